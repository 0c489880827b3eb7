"""The built-in disk measurement, used when fio is not installed.

It mirrors the fio jobs in `llmos.preflight.diskbench.fio`: random 4 KiB
writes with O_DIRECT and an fsync after each, and sequential 2300-byte
writes each followed by fdatasync. Both are bounded in time and size and
remove their test file.
"""

from __future__ import annotations

import errno
import math
import mmap
import os
import random
import time
from pathlib import Path

from llmos.preflight.diskbench.reading import (
    IOPS_BLOCK,
    IOPS_FILE_SIZE,
    LATENCY_BLOCK,
    LATENCY_FILE_SIZE,
    DiskReading,
)
from llmos.preflight.diskbench.target import test_file

__all__ = ["measure_fsync_latency", "measure_iops", "percentile"]

_LAYOUT_CHUNK = 1024 * 1024


def percentile(samples: list[float], fraction: float) -> float:
    """The nearest-rank percentile of ``samples`` (e.g. 0.99 for p99)."""
    ordered = sorted(samples)
    rank = max(1, math.ceil(fraction * len(ordered)))
    return ordered[rank - 1]


def _lay_out(path: Path, size: int) -> None:
    # Write the file fully first, as fio does, so random writes overwrite
    # allocated blocks instead of timing block allocation.
    chunk = b"\0" * _LAYOUT_CHUNK
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        for _ in range(size // _LAYOUT_CHUNK):
            os.write(fd, chunk)
        os.fsync(fd)
    finally:
        os.close(fd)


def _open_direct(path: Path) -> tuple[int, bool]:
    direct = getattr(os, "O_DIRECT", 0)
    if direct:
        try:
            return os.open(path, os.O_WRONLY | direct), True
        except OSError as exc:
            if exc.errno != errno.EINVAL:  # EINVAL: the filesystem has no O_DIRECT (tmpfs)
                raise
    return os.open(path, os.O_WRONLY), False


def measure_iops(directory: Path, seconds: float, size: int = IOPS_FILE_SIZE) -> DiskReading:
    """Random 4 KiB writes with O_DIRECT and fsync after each, for ``seconds`` at most."""
    path = test_file(directory, "iops")
    try:
        _lay_out(path, size)
        fd, direct = _open_direct(path)
        buffer = mmap.mmap(-1, IOPS_BLOCK)  # page-aligned, as O_DIRECT requires
        buffer.write(os.urandom(IOPS_BLOCK))
        blocks = size // IOPS_BLOCK
        order = random.Random()
        operations = 0
        start = time.monotonic()
        deadline = start + seconds
        try:
            while operations < blocks and time.monotonic() < deadline:
                os.pwrite(fd, buffer, order.randrange(blocks) * IOPS_BLOCK)
                os.fsync(fd)
                operations += 1
        finally:
            os.close(fd)
            buffer.close()
        elapsed = max(time.monotonic() - start, 1e-9)
    finally:
        path.unlink(missing_ok=True)
    note = None if direct else "the filesystem does not support O_DIRECT; page cache was used"
    return DiskReading("builtin", operations, elapsed, operations / elapsed, note=note)


def measure_fsync_latency(
    directory: Path, seconds: float, size: int = LATENCY_FILE_SIZE
) -> DiskReading:
    """Sequential 2300-byte writes, each followed by fdatasync; p99 of the fdatasync time."""
    path = test_file(directory, "fdatasync")
    chunk = os.urandom(LATENCY_BLOCK)
    latencies: list[float] = []
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        start = time.monotonic()
        deadline = start + seconds
        try:
            written = 0
            while written < size and time.monotonic() < deadline:
                os.write(fd, chunk)
                written += LATENCY_BLOCK
                before = time.perf_counter()
                os.fdatasync(fd)
                latencies.append(time.perf_counter() - before)
        finally:
            os.close(fd)
        elapsed = max(time.monotonic() - start, 1e-9)
    finally:
        path.unlink(missing_ok=True)
    p99 = percentile(latencies, 0.99) * 1000 if latencies else None
    return DiskReading("builtin", len(latencies), elapsed, len(latencies) / elapsed, p99_ms=p99)
