"""Pick the disk measurement: fio when it is installed and works, else the built-in one.

Called by the disk IOPS and fdatasync latency checks.
"""

from __future__ import annotations

from pathlib import Path

from llmos.preflight.diskbench import builtin, fio
from llmos.preflight.diskbench.reading import DiskReading

__all__ = ["measure_fsync_latency", "measure_iops"]


def measure_iops(directory: Path, seconds: float, *, use_fio: bool = True) -> DiskReading:
    """Random 4 KiB sync write IOPS on ``directory``'s filesystem."""
    why = "fio not used"
    if use_fio:
        reading, why_not = fio.measure_iops(directory, seconds)
        if reading is not None:
            return reading
        why = why_not or why
    reading = builtin.measure_iops(directory, seconds)
    note = "; ".join(n for n in (why, reading.note) if n)
    return DiskReading(reading.tool, reading.operations, reading.seconds, reading.iops, note=note)


def measure_fsync_latency(directory: Path, seconds: float, *, use_fio: bool = True) -> DiskReading:
    """p99 fdatasync latency of small sequential writes on ``directory``'s filesystem."""
    why = "fio not used"
    if use_fio:
        reading, why_not = fio.measure_fsync_latency(directory, seconds)
        if reading is not None:
            return reading
        why = why_not or why
    reading = builtin.measure_fsync_latency(directory, seconds)
    return DiskReading(
        reading.tool, reading.operations, reading.seconds, reading.iops, reading.p99_ms, why
    )
