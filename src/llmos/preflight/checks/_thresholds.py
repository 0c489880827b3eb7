"""Shared rules for hardware minimums: below minimum fails, below recommended warns.

Also what the hardware checks say when the host file they read is missing
under a fixture ``--root``: they do not fall back to the machine preflight
runs on, which is another host.
"""

from __future__ import annotations

from llmos.preflight.check import Check, CheckContext
from llmos.preflight.result import CheckResult, Status

__all__ = ["GB", "judge", "unreadable"]

GB = 1_000_000_000
"""Decimal gigabyte. Sizes on the requirements page are GB; MemTotal of a "16 GB" machine
is a little under 16 GiB because the kernel reserves some, but above 16 * 10^9 bytes."""


def judge(value: float, minimum: float, recommended: float) -> Status:
    """FAIL below ``minimum``, WARN below ``recommended``, else PASS."""
    if value < minimum:
        return Status.FAIL
    if value < recommended:
        return Status.WARN
    return Status.PASS


def unreadable(
    check: Check, ctx: CheckContext, host_path: str, wanted: str, required: str
) -> CheckResult:
    """A WARN saying that ``host_path`` under the root holds no readable ``wanted``."""
    where = ctx.host.path(host_path)
    return check.result(
        Status.WARN,
        f"unknown: no readable {wanted} in {where}",
        required,
        f"Make {where} readable (under --root, put a copy of the host's file there).",
        reason="not measured",
    )
