"""fdatasync latency check: p99 of small sequential writes with fdatasync, as etcd's guidance
measures it with fio. etcd wants p99 under 10 ms; slower warns.
"""

from __future__ import annotations

from llmos.preflight.check import Check, CheckContext
from llmos.preflight.checks._disk import not_measured, skip_reason, where
from llmos.preflight.diskbench.measure import measure_fsync_latency
from llmos.preflight.result import CheckResult, Status

__all__ = ["DiskLatencyCheck"]

MAXIMUM_P99_MS = 10.0
_REQUIRED = "fdatasync p99 < 10 ms"


class DiskLatencyCheck(Check):
    id = "disk-fsync-latency"
    title = "Disk fdatasync latency"
    cluster_only = True

    def run(self, ctx: CheckContext) -> CheckResult:
        reason = skip_reason(ctx)
        if reason is not None:
            return self.skipped(reason, _REQUIRED)
        directory = where(ctx)
        try:
            reading = measure_fsync_latency(directory, ctx.options.disk_seconds)
        except OSError as exc:  # a full or read-only filesystem is the node's, not a bug
            return not_measured(self, exc, directory, _REQUIRED)
        data = {**reading.to_dict(), "path": str(directory)}
        if reading.p99_ms is None:
            return self.result(
                Status.WARN,
                "not measured",
                _REQUIRED,
                "Check that the data dir is writable and run preflight again.",
                reason=reading.note,
                data=data,
            )
        measured = f"p99 {reading.p99_ms:.2f} ms ({reading.tool})"
        if reading.p99_ms >= MAXIMUM_P99_MS:
            return self.result(
                Status.WARN,
                measured,
                _REQUIRED,
                "etcd will be slow on this disk; put the data dir on a faster SSD/NVMe disk.",
                reason=reading.note,
                data=data,
            )
        return self.result(Status.PASS, measured, _REQUIRED, reason=reading.note, data=data)
