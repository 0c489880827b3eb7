"""Ray's temp dirs (sessions, Ray's own logs, unix sockets), one per MLCluster.

Used by the MLCluster controller. Unix socket paths must stay under 108 bytes,
so the dirs live in ``/tmp/llmos-ray-<uid>/<hash>`` (the hash of the data dir
and the cluster), not in the data dir; each holds an owner file naming its data
dir, so that a server start can clear what its previous run left there (old
sessions, and clusters deleted while it was down) without touching another
server's.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import shutil
import stat
import tempfile
from pathlib import Path

OWNER_FILE = ".llmos-owner"  # in each Ray temp dir: which data dir and cluster it is for


def default_root() -> Path:
    """Where the Ray temp dirs of this user's servers are."""
    return Path(tempfile.gettempdir()) / f"llmos-ray-{os.getuid()}"


class RayTempDirs:
    def __init__(self, data_dir: Path, root: Path | None = None) -> None:
        self.data_dir = data_dir
        self.root = root or default_root()

    def path(self, namespace: str, name: str) -> Path:
        """The cluster's temp dir (it may not exist yet)."""
        where = f"{self.data_dir}:{namespace}/{name}"
        return self.root / hashlib.sha256(where.encode()).hexdigest()[:12]

    def make(self, namespace: str, name: str) -> Path:
        """The cluster's temp dir, made (private, with its owner file) if it is not there."""
        temp = self.path(namespace, name)
        if not temp.is_dir():
            # Private all the way: a cluster's dir is its sandbox user's (nobody, for a root
            # server), and so reachable by any other process of that user through a root
            # folder it could enter.
            self.root.mkdir(parents=True, mode=0o700, exist_ok=True)
            if self.root.stat().st_mode & 0o077:
                self.root.chmod(0o700)  # made by an older server
            temp.mkdir(mode=0o700)
            (temp / OWNER_FILE).write_text(f"{self.data_dir}\n{namespace}/{name}\n")
        return temp

    async def remove(self, namespace: str, name: str) -> None:
        await asyncio.to_thread(shutil.rmtree, self.path(namespace, name), True)

    async def sweep(self) -> None:
        """Remove every temp dir of this data dir's clusters (call before any runs).

        After a restart no Ray process of this server is alive (the runtime swept
        them), so old sessions, logs and sockets, and the dirs of clusters deleted
        while the server was down, can all go; running clusters make theirs anew.
        """

        def sweep() -> None:
            if not self.root.is_dir():
                return
            for folder in self.root.iterdir():
                if _owner(folder) == str(self.data_dir):
                    shutil.rmtree(folder, ignore_errors=True)

        await asyncio.to_thread(sweep)


def _owner(folder: Path) -> str | None:
    """The data dir ``folder``'s owner file names, if it can be read.

    The folder is its cluster's, which can write in it: the file may be a link, a FIFO
    (read, it would hold up the server's start for good) or huge.
    """
    try:
        fd = os.open(folder / OWNER_FILE, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except OSError:
        return None
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            return None
        lines = os.read(fd, 4096).decode(errors="replace").splitlines()
    except OSError:
        return None
    finally:
        os.close(fd)
    return lines[0] if lines else None
