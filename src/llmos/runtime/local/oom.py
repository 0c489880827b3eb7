"""Whether the kernel's OOM killer ended a replica: the OOM-kill counters around its life.

The supervisor takes an :class:`OOMWatch` when it spawns a process and asks
:meth:`OOMWatch.killed` when that process died of a SIGKILL the runtime did
not send. The kernel counts its OOM kills in the process's memory cgroup
(``memory.events`` ``oom_kill`` on cgroup v2, ``memory.oom_control`` on v1)
and for the whole node (``/proc/vmstat`` ``oom_kill``, Linux 4.13+). A
counter that rose while the process lived says the OOM killer struck; the
cgroup's counter names this workload's group, the node's may be another
process's kill at the same moment. Where no counter can be read (not Linux,
an old kernel) the SIGKILL alone is the evidence.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from llmos.runtime.local.cgroups import cgroup_dirs

__all__ = ["OOMWatch"]

_VMSTAT = Path("/proc/vmstat")


def _counter(path: Path, field: str = "oom_kill") -> int | None:
    try:
        for line in path.read_text().splitlines():
            name, _, value = line.partition(" ")
            if name == field:
                return int(value)
    except (OSError, ValueError):
        return None
    return None


def _cgroup_files(pid: int) -> list[Path]:
    """The files holding the OOM-kill counter of ``pid``'s memory cgroup (v2 and/or v1)."""
    files = []
    for controllers, folder in cgroup_dirs(pid):
        if not controllers or "memory" in controllers:
            candidate = folder / ("memory.events" if not controllers else "memory.oom_control")
            if candidate.is_file():
                files.append(candidate)
    return files


class OOMWatch:
    """The OOM-kill counters of one process, read when it starts."""

    def __init__(self, pid: int, *, read: Callable[[Path], int | None] = _counter) -> None:
        self._read = read
        self._files = [*_cgroup_files(pid), _VMSTAT]
        self._before = {path: read(path) for path in self._files}

    def killed(self) -> bool | None:
        """True if a counter rose since the start, False if none did, None if none is readable."""
        readable = False
        for path, before in self._before.items():
            after = self._read(path)
            if before is None or after is None:
                continue
            readable = True
            if after > before:
                return True
        return False if readable else None
