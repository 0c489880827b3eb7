"""Hostname check: a valid DNS-1123 name, and not ``localhost``.

Kubernetes registers the node under its hostname, so it must be a valid
node name, and ``localhost`` would collide on every node.
"""

from __future__ import annotations

import string

from llmos._lib.dns import LABEL_MAX, SUBDOMAIN_MAX, dns1123_subdomain_problem
from llmos.preflight.check import Check, CheckContext
from llmos.preflight.checks._hostname import hostname
from llmos.preflight.result import CheckResult, Status

__all__ = ["HostnameCheck"]

_REQUIRED = "valid DNS-1123 name, not localhost"


_ALLOWED = frozenset(string.ascii_lowercase + string.digits + "-")


def _suggestion(name: str) -> str:
    """A valid DNS-1123 name close to ``name``, to put in the fix line; ``node-1`` if none."""
    labels = []
    for label in name.lower().split("."):
        cleaned = "".join(c if c in _ALLOWED else "-" for c in label)[:LABEL_MAX].strip("-")
        if cleaned:
            labels.append(cleaned)
    suggestion = ".".join(labels)[:SUBDOMAIN_MAX].strip(".-")
    if suggestion.split(".")[0] == "localhost" or dns1123_subdomain_problem(suggestion):
        return "node-1"
    return suggestion


class HostnameCheck(Check):
    id = "hostname"
    title = "Hostname"

    def run(self, ctx: CheckContext) -> CheckResult:
        name = hostname(ctx.host)
        data = {"hostname": name}
        if name.split(".")[0].lower() == "localhost":
            return self.result(
                Status.FAIL,
                name,
                _REQUIRED,
                "Give the node a unique name: hostnamectl set-hostname NAME",
                data=data,
            )
        problem = dns1123_subdomain_problem(name)
        if problem is not None:
            return self.result(
                Status.FAIL,
                f"{name} ({problem})",
                _REQUIRED,
                f"Rename the node, e.g.: hostnamectl set-hostname {_suggestion(name)}",
                data=data,
            )
        return self.result(Status.PASS, name, _REQUIRED, data=data)
