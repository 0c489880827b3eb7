"""A memory cgroup with a small limit, so that a test can make the kernel's OOM killer strike.

Needs a writable memory cgroup hierarchy (cgroup v1's memory controller, or v2 with
the memory controller enabled), which root has on most Linux hosts and containers;
:func:`limited_cgroup` returns None where there is none, and the test skips.
"""

from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import Iterator
from pathlib import Path


def _mounts() -> list[tuple[str, str, str]]:
    """(fstype, mount point, super options) of each cgroup mount."""
    found = []
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        left, _, right = line.partition(" - ")
        fields, tail = left.split(), right.split()
        if len(tail) >= 3 and tail[0] in ("cgroup", "cgroup2"):
            found.append((tail[0], fields[4], tail[2]))
    return found


def _candidates() -> Iterator[tuple[Path, str, str]]:
    """(parent dir, limit file, procs file) where a child memory cgroup could go."""
    for fstype, point, options in _mounts():
        if fstype == "cgroup" and "memory" in options.split(","):
            yield Path(point), "memory.limit_in_bytes", "cgroup.procs"
        elif fstype == "cgroup2":
            controllers = Path(point) / "cgroup.controllers"
            with contextlib.suppress(OSError):
                if "memory" in controllers.read_text().split():
                    yield Path(point), "memory.max", "cgroup.procs"


@contextlib.contextmanager
def limited_cgroup(limit_bytes: int) -> Iterator[Path | None]:
    """A fresh memory cgroup limited to ``limit_bytes`` (its ``cgroup.procs`` path), or None.

    Write a pid to the yielded file to move that process in. The group is removed on exit
    (once its processes are gone).
    """
    if os.geteuid() != 0:
        yield None
        return
    for parent, limit_file, procs in _candidates():
        group = parent / f"llmos-test-oom-{uuid.uuid4().hex[:8]}"
        try:
            group.mkdir()
        except OSError:
            continue
        try:
            try:
                (group / limit_file).write_text(str(limit_bytes))
            except OSError:
                continue
            yield group / procs
            return
        finally:
            with contextlib.suppress(OSError):
                group.rmdir()
    yield None
