"""`HostFiles`: read host files (os-release, /proc, /sys, /etc) under a root.

Every check reads the host through this class, never through absolute
paths, so that tests can point ``--root`` at a fixture tree.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

__all__ = ["HostFiles"]


@dataclass(frozen=True)
class HostFiles:
    """A view of the host's file system rooted at ``root`` (``/`` for the live host)."""

    root: Path = Path("/")

    @property
    def is_live(self) -> bool:
        """Whether this view is the live host, not a fixture tree."""
        return self.root.resolve() == Path("/")

    def path(self, host_path: str) -> Path:
        """The real path of ``host_path`` (an absolute path on the host)."""
        return self.root / host_path.lstrip("/")

    def read_text(self, host_path: str) -> str | None:
        """The file's text, or None when it is missing or unreadable."""
        try:
            return self.path(host_path).read_text(encoding="utf-8", errors="replace")
        except OSError:
            return None

    def read_bytes(self, host_path: str) -> bytes | None:
        """The file's bytes, or None when it is missing or unreadable."""
        try:
            return self.path(host_path).read_bytes()
        except OSError:
            return None

    def exists(self, host_path: str) -> bool:
        """Whether ``host_path`` exists (a dangling link counts as missing)."""
        return self.path(host_path).exists()

    def entries(self, host_path: str) -> Iterator[str]:
        """Names in the directory ``host_path``; nothing when it is missing."""
        try:
            names = sorted(os.listdir(self.path(host_path)))
        except OSError:
            return
        yield from names

    def readlink(self, host_path: str) -> str | None:
        """The target of a symbolic link, or None."""
        try:
            return os.readlink(self.path(host_path))
        except OSError:
            return None
