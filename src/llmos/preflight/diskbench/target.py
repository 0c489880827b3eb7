"""Where disk measurements run: the data dir's filesystem, its device, and test file names.

Used by the disk space and disk speed checks. The data dir may not exist
yet (preflight runs before install), so they use its nearest existing
ancestor: the same filesystem the data dir will be created on.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path

from llmos.preflight.host import HostFiles

__all__ = ["existing_ancestor", "is_rotational", "test_file"]


def existing_ancestor(path: Path) -> Path:
    """``path`` itself if it exists, else its nearest existing parent directory."""
    current = path.absolute()
    while not current.exists() and current != current.parent:
        current = current.parent
    return current if current.is_dir() else current.parent


def test_file(directory: Path, purpose: str) -> Path:
    """A fresh, hidden, unique file name in ``directory`` for one measurement."""
    return directory / f".llmos-preflight-{purpose}-{os.getpid()}-{secrets.token_hex(4)}"


def is_rotational(host: HostFiles, directory: Path) -> bool | None:
    """Whether the block device under ``directory`` is a spinning disk; None when unknown.

    Follows ``/sys/dev/block/MAJOR:MINOR``; for a partition the flag lives on
    the parent disk. Filesystems without a block device (tmpfs, overlay) are
    unknown.
    """
    device = os.stat(directory).st_dev
    base = f"/sys/dev/block/{os.major(device)}:{os.minor(device)}"
    for candidate in (f"{base}/queue/rotational", f"{base}/../queue/rotational"):
        text = host.read_text(candidate)
        if text is not None and text.strip() in {"0", "1"}:
            return text.strip() == "1"
    return None
