"""Disk space check: the data dir's filesystem holds at least 100 GB, 200 GB recommended."""

from __future__ import annotations

import os

from llmos.preflight.check import Check, CheckContext
from llmos.preflight.checks._thresholds import GB, judge
from llmos.preflight.diskbench.target import existing_ancestor
from llmos.preflight.result import CheckResult, Status

__all__ = ["DiskSpaceCheck"]

MINIMUM = 100 * GB
RECOMMENDED = 200 * GB


class DiskSpaceCheck(Check):
    """Judges the size of the filesystem; reports free space alongside."""

    id = "disk-space"
    title = "Disk space"

    def run(self, ctx: CheckContext) -> CheckResult:
        where = existing_ancestor(ctx.options.data_dir)
        stats = os.statvfs(where)
        total = stats.f_blocks * stats.f_frsize
        free = stats.f_bavail * stats.f_frsize
        status = judge(total, MINIMUM, RECOMMENDED)
        fix = (
            "Put the data dir (--data-dir) on a filesystem of at least 100 GB (200 GB recommended)."
            if status is Status.FAIL
            else f"{total / GB:.0f} GB is enough to run; put the data dir (--data-dir) on a "
            "filesystem of 200 GB as recommended for production."
        )
        return self.result(
            status,
            f"{total / GB:.0f} GB ({free / GB:.0f} GB free) at {where}",
            "100 GB minimum, 200 GB recommended",
            fix,
            data={
                "path": str(where),
                "totalBytes": total,
                "freeBytes": free,
                "minimum": MINIMUM,
                "recommended": RECOMMENDED,
            },
        )
