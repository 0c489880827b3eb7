"""DNS-1123 name rules shared by resource validation, the CLI and preflight."""

from __future__ import annotations

import re
import secrets
import string

_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
_SUFFIX_ALPHABET = string.ascii_lowercase + string.digits


def label_problem(value: str) -> str | None:
    """Return why ``value`` is not a DNS-1123 label, or None if it is one."""
    if not value:
        return "must not be empty"
    if len(value) > 63:
        return f"must be no more than 63 characters (it has {len(value)})"
    if not _LABEL.match(value):
        return (
            "must consist of lower case alphanumeric characters or '-', and must start "
            "and end with an alphanumeric character (e.g. 'my-name' or '123-abc')"
        )
    return None


def subdomain_problem(value: str) -> str | None:
    """Return why ``value`` is not a DNS-1123 subdomain, or None if it is one."""
    if not value:
        return "must not be empty"
    if len(value) > 253:
        return f"must be no more than 253 characters (it has {len(value)})"
    if not _SUBDOMAIN.match(value):
        return (
            "must consist of lower case alphanumeric characters, '-' or '.', and must "
            "start and end with an alphanumeric character (e.g. 'example.com')"
        )
    return None


def random_suffix(length: int = 5) -> str:
    """A random lowercase suffix for ``metadata.generateName``."""
    return "".join(secrets.choice(_SUFFIX_ALPHABET) for _ in range(length))
