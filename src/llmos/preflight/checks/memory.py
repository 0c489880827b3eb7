"""Memory check: at least 16 GB, 32 GB recommended (MemTotal from /proc/meminfo)."""

from __future__ import annotations

import psutil

from llmos.preflight.check import Check, CheckContext
from llmos.preflight.checks._thresholds import GB, judge
from llmos.preflight.result import CheckResult

__all__ = ["MemoryCheck"]

MINIMUM = 16 * GB
RECOMMENDED = 32 * GB


def memory_total(meminfo: str | None) -> int:
    """MemTotal in bytes; psutil's reading when ``/proc/meminfo`` can't be read."""
    for line in (meminfo or "").splitlines():
        key, _, value = line.partition(":")
        if key == "MemTotal":
            number, _, unit = value.strip().partition(" ")
            return int(number) * (1024 if unit.strip().lower() == "kb" else 1)
    return int(psutil.virtual_memory().total)


class MemoryCheck(Check):
    id = "memory"
    title = "Memory"

    def run(self, ctx: CheckContext) -> CheckResult:
        total = memory_total(ctx.host.read_text("/proc/meminfo"))
        return self.result(
            judge(total, MINIMUM, RECOMMENDED),
            f"{total / GB:.1f} GB",
            "16 GB minimum, 32 GB recommended",
            "Give the node at least 16 GB of memory (32 GB recommended).",
            data={"bytes": total, "minimum": MINIMUM, "recommended": RECOMMENDED},
        )
