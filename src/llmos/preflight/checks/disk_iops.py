"""Disk IOPS check: random 4 KiB sync writes on the data dir's disk, at least 5,000 per second.

Also warns when the disk is rotational: etcd wants an SSD or NVMe disk.
"""

from __future__ import annotations

from llmos.preflight.check import Check, CheckContext
from llmos.preflight.checks._disk import not_measured, skip_reason, where
from llmos.preflight.diskbench.measure import measure_iops
from llmos.preflight.diskbench.target import is_rotational
from llmos.preflight.result import CheckResult, Status

__all__ = ["DiskIopsCheck"]

MINIMUM_IOPS = 5000
_REQUIRED = "5,000+ random 4k sync write IOPS, SSD/NVMe"


class DiskIopsCheck(Check):
    id = "disk-iops"
    title = "Disk IOPS"
    cluster_only = True

    def run(self, ctx: CheckContext) -> CheckResult:
        reason = skip_reason(ctx)
        if reason is not None:
            return self.skipped(reason, _REQUIRED)
        directory = where(ctx)
        rotational = is_rotational(ctx.host, directory)
        try:
            reading = measure_iops(directory, ctx.options.disk_seconds)
        except OSError as exc:  # a full or read-only filesystem is the node's, not a bug
            return not_measured(self, exc, directory, _REQUIRED)
        data = {**reading.to_dict(), "path": str(directory), "rotational": rotational}
        measured = f"{reading.iops:,.0f} IOPS ({reading.tool})"
        if rotational:
            measured += ", rotational disk"
        if reading.iops < MINIMUM_IOPS:
            return self.result(
                Status.FAIL,
                measured,
                _REQUIRED,
                "Put the data dir on an SSD/NVMe disk; on a cloud VM pick a disk type "
                "with more provisioned IOPS.",
                reason=reading.note,
                data=data,
            )
        if rotational:
            return self.result(
                Status.WARN,
                measured,
                _REQUIRED,
                "The disk reports itself as rotational; use an SSD/NVMe disk for etcd.",
                reason=reading.note,
                data=data,
            )
        return self.result(Status.PASS, measured, _REQUIRED, reason=reading.note, data=data)
