"""CPU check: at least 4 cores, 8 recommended."""

from __future__ import annotations

import os

from llmos.preflight.check import Check, CheckContext
from llmos.preflight.checks._thresholds import judge
from llmos.preflight.result import CheckResult

__all__ = ["CpuCheck"]

MINIMUM = 4
RECOMMENDED = 8


def count_cpus(cpuinfo: str | None) -> int:
    """Logical CPUs listed in ``/proc/cpuinfo``; ``os.cpu_count()`` when it can't be read."""
    if cpuinfo:
        count = sum(1 for line in cpuinfo.splitlines() if line.split(":")[0].strip() == "processor")
        if count:
            return count
    return os.cpu_count() or 1


class CpuCheck(Check):
    id = "cpu"
    title = "CPU cores"

    def run(self, ctx: CheckContext) -> CheckResult:
        cores = count_cpus(ctx.host.read_text("/proc/cpuinfo"))
        status = judge(cores, MINIMUM, RECOMMENDED)
        return self.result(
            status,
            f"{cores} cores",
            f"{MINIMUM} cores minimum, {RECOMMENDED} recommended",
            f"Give the node at least {MINIMUM} CPU cores ({RECOMMENDED} recommended).",
            data={"cores": cores, "minimum": MINIMUM, "recommended": RECOMMENDED},
        )
