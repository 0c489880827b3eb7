"""What the two disk speed checks share: when to skip, and where to measure."""

from __future__ import annotations

import errno
import os
from pathlib import Path

from llmos.preflight.check import Check, CheckContext
from llmos.preflight.diskbench.reading import IOPS_FILE_SIZE
from llmos.preflight.diskbench.target import existing_ancestor
from llmos.preflight.result import CheckResult, Status

__all__ = ["not_measured", "skip_reason", "where"]


def where(ctx: CheckContext) -> Path:
    """The directory the test file goes in: the data dir, or its nearest existing parent."""
    return existing_ancestor(ctx.options.data_dir)


def skip_reason(ctx: CheckContext) -> str | None:
    """Why the disk must not be measured in this run, or None to measure it."""
    if ctx.options.quick:
        return "--quick skips the disk measurement"
    directory = where(ctx)
    if not os.access(directory, os.W_OK):
        if not ctx.is_root:
            return f"needs root: cannot write a test file in {directory}; run as root"
        return f"cannot write a test file in {directory}"
    return None


def not_measured(check: Check, error: OSError, directory: Path, required: str) -> CheckResult:
    """A WARN for a measurement the data dir's filesystem refused (full, read-only, ...)."""
    why = error.strerror or str(error)
    if error.errno in (errno.ENOSPC, errno.EDQUOT):
        fix = (
            f"Free space in {directory} (the test writes up to {IOPS_FILE_SIZE // 2**20} MiB "
            "and removes it) or pick another --data-dir, and run preflight again."
        )
    else:
        fix = f"Make {directory} writable or pick another --data-dir, and run preflight again."
    return check.result(
        Status.WARN,
        f"not measured: {why} in {directory}",
        required,
        fix,
        reason=f"the test file could not be written: {why}",
        data={"path": str(directory), "error": why},
    )
