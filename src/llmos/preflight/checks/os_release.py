"""Operating system check: the distribution and version from os-release.

A listed distribution below its minimum fails; one that is not listed warns
that it is not officially tested.
"""

from __future__ import annotations

import shlex

from llmos.preflight.check import Check, CheckContext
from llmos.preflight.result import CheckResult, Status

__all__ = ["MINIMUM_VERSIONS", "OperatingSystemCheck", "parse_os_release"]

# os-release ID -> (display name, minimum VERSION_ID)
MINIMUM_VERSIONS: dict[str, tuple[str, tuple[int, ...]]] = {
    "ubuntu": ("Ubuntu", (20, 4)),
    "rhel": ("RHEL", (8, 5)),
    "sles": ("SLES", (15, 3)),
    "sles_sap": ("SLES for SAP", (15, 3)),
    "opensuse-leap": ("openSUSE Leap", (15, 3)),
    "rocky": ("Rocky Linux", (8, 5)),
    "debian": ("Debian", (11,)),
    "fedora": ("Fedora", (37,)),
}

_TESTED = "Ubuntu 20.04+, RHEL 8.5+, SLES/openSUSE Leap 15.3+, Rocky 8.5+, Debian 11+, Fedora 37+"


def parse_os_release(text: str) -> dict[str, str]:
    """The KEY=value pairs of an os-release file, with shell quoting removed."""
    fields = {}
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#") or "=" not in line:
            continue
        key, _, value = line.partition("=")
        try:
            words = shlex.split(value)
        except ValueError:
            words = [value.strip("\"'")]
        fields[key.strip()] = " ".join(words)
    return fields


def _version(text: str) -> tuple[int, ...] | None:
    try:
        return tuple(int(part) for part in text.split("."))
    except ValueError:
        return None


def _format(version: tuple[int, ...]) -> str:
    if len(version) == 2 and version[0] == 20:
        return f"{version[0]}.{version[1]:02d}"  # Ubuntu's 20.04, not 20.4
    return ".".join(str(p) for p in version)


def _at_least(version: tuple[int, ...], minimum: tuple[int, ...]) -> bool:
    width = max(len(version), len(minimum))
    return version + (0,) * (width - len(version)) >= minimum + (0,) * (width - len(minimum))


class OperatingSystemCheck(Check):
    """Reads ``/etc/os-release``, falling back to ``/usr/lib/os-release``."""

    id = "os"
    title = "Operating system"

    def run(self, ctx: CheckContext) -> CheckResult:
        text = ctx.host.read_text("/etc/os-release") or ctx.host.read_text("/usr/lib/os-release")
        if text is None:
            return self.result(
                Status.WARN,
                "unknown (no /etc/os-release)",
                _TESTED,
                "Run on a Linux distribution that ships /etc/os-release; this one is not tested.",
            )
        fields = parse_os_release(text)
        os_id = fields.get("ID", "").lower()
        version_id = fields.get("VERSION_ID", "")
        pretty = fields.get("PRETTY_NAME") or f"{fields.get('NAME', os_id)} {version_id}".strip()
        data = {"id": os_id, "versionId": version_id, "prettyName": pretty}
        if not os_id:
            where = "/etc/os-release or /usr/lib/os-release"
            return self.result(
                Status.WARN,
                f"unknown distribution ({where} has no ID)" + (f": {pretty}" if pretty else ""),
                _TESTED,
                f"Check that {where} names the distribution (ID=...); an unknown one is not "
                "officially tested.",
                reason="not officially tested",
                data=data,
            )
        if os_id not in MINIMUM_VERSIONS:
            return self.result(
                Status.WARN,
                pretty,
                _TESTED,
                f"{pretty} is not officially tested; use a tested distribution if you hit "
                "problems.",
                reason="not officially tested",
                data=data,
            )
        name, minimum = MINIMUM_VERSIONS[os_id]
        required = f"{name} {_format(minimum)} or newer"
        version = _version(version_id)
        if version is None:
            return self.result(
                Status.WARN,
                pretty,
                required,
                f"Could not read the version of {name} ({version_id!r}); check it is {required}.",
                data=data,
            )
        if not _at_least(version, minimum):
            return self.result(
                Status.FAIL,
                pretty,
                required,
                f"Upgrade to {required}.",
                data=data,
            )
        return self.result(Status.PASS, pretty, required, data=data)
