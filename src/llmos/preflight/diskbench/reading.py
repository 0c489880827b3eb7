"""The results of disk measurements, shared by fio and the built-in measurement."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["IOPS_BLOCK", "IOPS_FILE_SIZE", "LATENCY_BLOCK", "LATENCY_FILE_SIZE", "DiskReading"]

IOPS_BLOCK = 4096
IOPS_FILE_SIZE = 64 * 1024 * 1024
LATENCY_BLOCK = 2300  # etcd's WAL write size in its fio guidance
LATENCY_FILE_SIZE = 22 * 1024 * 1024


@dataclass(frozen=True)
class DiskReading:
    """One measurement: how many operations ran, for how long, and what came out."""

    tool: str
    """``fio`` or ``builtin``."""
    operations: int
    seconds: float
    iops: float
    p99_ms: float | None = None
    """99th percentile of fdatasync latency (latency test only)."""
    note: str | None = None
    """Why the measurement differs from the usual one (fio failed, no O_DIRECT, ...)."""

    def to_dict(self) -> dict[str, object]:
        return {
            "tool": self.tool,
            "operations": self.operations,
            "seconds": round(self.seconds, 3),
            "iops": round(self.iops, 1),
            "p99Ms": None if self.p99_ms is None else round(self.p99_ms, 3),
            "note": self.note,
        }
