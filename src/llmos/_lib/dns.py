"""DNS-1123 name rules, as Kubernetes applies them to node and object names.

Pure helpers with no project imports: ``llmos.resources`` validates object
names with them, and ``llmos.preflight`` checks that the hostname can become
a node name.
"""

from __future__ import annotations

import re

__all__ = ["dns1123_label_problem", "dns1123_subdomain_problem", "is_dns1123_subdomain"]

_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
LABEL_MAX = 63
SUBDOMAIN_MAX = 253


def dns1123_label_problem(label: str) -> str | None:
    """Say why ``label`` is not a DNS-1123 label, or return None when it is one."""
    if not label:
        return "is empty"
    if len(label) > LABEL_MAX:
        return f"must be no more than {LABEL_MAX} characters (it has {len(label)})"
    if label.lower() != label:
        return "contains upper-case letters"
    if not _LABEL.match(label):
        return (
            "must contain only lower-case letters, digits and '-', "
            "and start and end with a letter or digit"
        )
    return None


def dns1123_subdomain_problem(name: str) -> str | None:
    """Say why ``name`` is not a DNS-1123 subdomain, or return None when it is one.

    A subdomain is one or more labels joined by dots, 253 characters at most.
    """
    if not name:
        return "is empty"
    if len(name) > SUBDOMAIN_MAX:
        return f"must be no more than {SUBDOMAIN_MAX} characters (it has {len(name)})"
    for label in name.split("."):
        problem = dns1123_label_problem(label)
        if problem is not None:
            return f"label {label!r} {problem}"
    return None


def is_dns1123_subdomain(name: str) -> bool:
    """Whether ``name`` is a valid DNS-1123 subdomain (a valid Kubernetes node name)."""
    return dns1123_subdomain_problem(name) is None
