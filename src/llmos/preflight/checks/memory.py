"""Memory check: at least 16 GB, 32 GB recommended (MemTotal from /proc/meminfo)."""

from __future__ import annotations

import psutil

from llmos.preflight.check import Check, CheckContext
from llmos.preflight.checks._thresholds import GB, judge, unreadable
from llmos.preflight.result import CheckResult, Status

__all__ = ["MemoryCheck"]

MINIMUM = 16 * GB
RECOMMENDED = 32 * GB
_MEMINFO = "/proc/meminfo"


def memory_total(meminfo: str | None) -> int | None:
    """MemTotal in bytes; None when ``/proc/meminfo`` has no readable MemTotal line."""
    for line in (meminfo or "").splitlines():
        key, _, value = line.partition(":")
        if key.strip() == "MemTotal":
            number, _, unit = value.strip().partition(" ")
            try:
                amount = int(number)
            except ValueError:
                return None
            return amount * (1024 if unit.strip().lower() == "kb" else 1)
    return None


class MemoryCheck(Check):
    id = "memory"
    title = "Memory"

    def run(self, ctx: CheckContext) -> CheckResult:
        required = "16 GB minimum, 32 GB recommended"
        total = memory_total(ctx.host.read_text(_MEMINFO))
        if total is None and ctx.host.is_live:
            total = int(psutil.virtual_memory().total)
        if total is None:
            return unreadable(self, ctx, _MEMINFO, "MemTotal", required)
        status = judge(total, MINIMUM, RECOMMENDED)
        fix = (
            "Give the node at least 16 GB of memory (32 GB recommended)."
            if status is Status.FAIL
            else f"{total / GB:.1f} GB is enough to run; give the node 32 GB as recommended "
            "for production."
        )
        return self.result(
            status,
            f"{total / GB:.1f} GB",
            required,
            fix,
            data={"bytes": total, "minimum": MINIMUM, "recommended": RECOMMENDED},
        )
