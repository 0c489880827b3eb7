"""Disk measurements with fio, the tool etcd's guidance uses.

Two jobs: random 4 KiB writes with direct I/O and an fsync after each
(IOPS), and etcd's WAL pattern, sequential 2300-byte writes with fdatasync
(p99 latency). Returns None when fio is missing or fails, so the caller can
fall back to `llmos.preflight.diskbench.builtin`.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

from llmos.preflight.diskbench.reading import (
    IOPS_BLOCK,
    IOPS_FILE_SIZE,
    LATENCY_BLOCK,
    LATENCY_FILE_SIZE,
    DiskReading,
)
from llmos.preflight.diskbench.target import test_file

__all__ = ["fio_path", "measure_fsync_latency", "measure_iops"]

_SLACK_SECONDS = 30.0  # laying out the file and starting fio come on top of the runtime


def fio_path() -> str | None:
    """Where fio is installed, or None."""
    return shutil.which("fio")


def _run(path: Path, seconds: float, job: list[str]) -> tuple[dict[str, Any] | None, str | None]:
    """Run one fio job; return its JSON job entry, or None and why."""
    binary = fio_path()
    if binary is None:
        return None, "fio is not installed"
    command = [
        binary,
        f"--name={path.name}",
        f"--filename={path}",
        f"--runtime={max(1, int(seconds * 1000))}ms",
        "--output-format=json",
        *job,
    ]
    try:
        done = subprocess.run(
            command, capture_output=True, text=True, timeout=seconds + _SLACK_SECONDS, check=False
        )
    except subprocess.TimeoutExpired:
        return None, "fio did not finish in time"
    finally:
        path.unlink(missing_ok=True)
    if done.returncode != 0:
        return None, f"fio failed: {(done.stderr or done.stdout).strip()[:200]}"
    try:
        entry: dict[str, Any] = json.loads(done.stdout[done.stdout.index("{") :])["jobs"][0]
    except (ValueError, KeyError, IndexError):
        return None, "fio printed no JSON result"
    if entry.get("error"):
        return None, f"fio job failed with error {entry['error']}"
    return entry, None


def measure_iops(
    directory: Path, seconds: float, size: int = IOPS_FILE_SIZE
) -> tuple[DiskReading | None, str | None]:
    """Random 4 KiB direct writes with fsync after each, for ``seconds`` at most."""
    entry, why = _run(
        test_file(directory, "iops"),
        seconds,
        [
            "--rw=randwrite",
            f"--bs={IOPS_BLOCK}",
            f"--size={size}",
            "--direct=1",
            "--ioengine=psync",
            "--fsync=1",
            # Write the file out first, as the built-in measurement does, so that random
            # writes overwrite blocks instead of converting fallocate()d extents.
            "--overwrite=1",
        ],
    )
    if entry is None:
        return None, why
    write = entry["write"]
    runtime = float(entry.get("job_runtime", 0)) / 1000 or seconds
    return DiskReading("fio", int(write["total_ios"]), runtime, float(write["iops"])), None


def measure_fsync_latency(
    directory: Path, seconds: float, size: int = LATENCY_FILE_SIZE
) -> tuple[DiskReading | None, str | None]:
    """Sequential 2300-byte writes with fdatasync, as etcd's guidance runs fio."""
    entry, why = _run(
        test_file(directory, "fdatasync"),
        seconds,
        [
            "--rw=write",
            f"--bs={LATENCY_BLOCK}",
            f"--size={size}",
            "--ioengine=sync",
            "--fdatasync=1",
        ],
    )
    if entry is None:
        return None, why
    try:
        sync = entry["sync"]
        p99_ns = float(sync["lat_ns"]["percentile"]["99.000000"])
        operations = int(sync.get("total_ios") or entry["write"]["total_ios"])
    except (KeyError, TypeError, ValueError):
        return None, "this fio version reports no fdatasync percentiles"
    runtime = float(entry.get("job_runtime", 0)) / 1000 or seconds
    return (
        DiskReading("fio", operations, runtime, operations / runtime, p99_ms=p99_ns / 1e6),
        None,
    )
