"""What the two disk speed checks share: when to skip, and where to measure."""

from __future__ import annotations

import os
from pathlib import Path

from llmos.preflight.check import CheckContext
from llmos.preflight.diskbench.target import existing_ancestor

__all__ = ["skip_reason", "where"]


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
