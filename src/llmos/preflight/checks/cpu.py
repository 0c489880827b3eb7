"""CPU check: at least 4 cores, 8 recommended."""

from __future__ import annotations

import os

from llmos.preflight.check import Check, CheckContext
from llmos.preflight.checks._thresholds import judge, unreadable
from llmos.preflight.result import CheckResult, Status

__all__ = ["CpuCheck"]

MINIMUM = 4
RECOMMENDED = 8
_CPUINFO = "/proc/cpuinfo"


def count_cpus(cpuinfo: str | None) -> int | None:
    """Logical CPUs listed in ``/proc/cpuinfo``; None when it lists none or can't be read."""
    count = sum(
        1 for line in (cpuinfo or "").splitlines() if line.split(":")[0].strip() == "processor"
    )
    return count or None


class CpuCheck(Check):
    id = "cpu"
    title = "CPU cores"

    def run(self, ctx: CheckContext) -> CheckResult:
        required = f"{MINIMUM} cores minimum, {RECOMMENDED} recommended"
        cores = count_cpus(ctx.host.read_text(_CPUINFO))
        if cores is None and ctx.host.is_live:
            cores = os.cpu_count()
        if cores is None:
            return unreadable(self, ctx, _CPUINFO, "processor lines", required)
        status = judge(cores, MINIMUM, RECOMMENDED)
        fix = (
            f"Give the node at least {MINIMUM} CPU cores ({RECOMMENDED} recommended)."
            if status is Status.FAIL
            else f"{cores} cores is enough to run; give the node {RECOMMENDED} cores "
            "as recommended for production."
        )
        return self.result(
            status,
            f"{cores} core{'s' if cores != 1 else ''}",
            required,
            fix,
            data={"cores": cores, "minimum": MINIMUM, "recommended": RECOMMENDED},
        )
