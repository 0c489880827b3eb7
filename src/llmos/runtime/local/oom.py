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

import asyncio
import contextlib
import signal
from collections.abc import Callable
from pathlib import Path

from llmos.runtime.local.cgroups import cgroup_dirs
from llmos.runtime.local.process import describe_exit

__all__ = ["OOMWatch", "judge_exit", "lived_through"]

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
    """The OOM-kill counters of one process's memory cgroup and of the node, read at its start.

    Give ``group`` (the replica's own memory cgroup folder, made before the spawn) to read
    them before the process runs: one killed within its first milliseconds still counts.
    """

    def __init__(
        self,
        pid: int | None = None,
        *,
        group: Path | None = None,
        read: Callable[[Path], int | None] = _counter,
    ) -> None:
        self._read = read
        self._own = group is not None  # a cgroup only this process and its children use
        if group is not None:
            own = [group / name for name in ("memory.events", "memory.oom_control")]
            self._group = [path for path in own if path.is_file()]
        else:
            self._group = _cgroup_files(pid) if pid is not None else []
        self._before = {path: read(path) for path in [*self._group, _VMSTAT]}
        # What kills inside count from: the start, then each kill the process lived through.
        self._lived = {path: self._before[path] for path in self._group}

    @property
    def ends_one_process(self) -> bool:
        """Whether an OOM kill in its own cgroup may leave the process running: on cgroup
        v1 (``memory.oom_control``) the OOM killer ends one process of the group; on v2 the
        runtime sets ``memory.oom.group``, and it ends them all."""
        return self._own and any(path.name == "memory.oom_control" for path in self._group)

    def _rose(self, paths: list[Path], since: dict[Path, int | None]) -> bool | None:
        readable = False
        for path in paths:
            before, after = since.get(path), self._read(path)
            if before is None or after is None:
                continue
            readable = True
            if after > before:
                return True
        return False if readable else None

    def killed(self) -> bool | None:
        """True if a counter rose since the start, False if none did, None if none is readable."""
        return self._rose([*self._group, _VMSTAT], self._before)

    def inside(self) -> tuple[int, dict[Path, int | None]]:
        """OOM kills counted in the process's own cgroup (``group``) since its start or the
        last :meth:`lived_through`, and the counters as read, to pass to that."""
        if not self._own:
            return 0, {}
        read = {path: self._read(path) for path in self._group}
        kills = 0
        for path in self._group:
            before, after = self._lived.get(path), read[path]
            if before is not None and after is not None and after > before:
                kills += after - before
        return kills, read

    def lived_through(self, counters: dict[Path, int | None]) -> None:
        """The process ran on past the kills in ``counters`` (from :meth:`inside`): they are
        no evidence that a later exit other than a SIGKILL came of them. (A SIGKILL is still
        judged by :meth:`killed`, from the start.)"""
        for path, value in counters.items():
            if value is not None:
                self._lived[path] = value

    def killed_inside(self) -> bool:
        """Whether the OOM killer struck in the process's own cgroup (given as ``group``: a
        kill counted there was one of its processes'), whatever its exit then was: it may
        have lost a child to it, and exited 1."""
        return self._own and bool(self._rose(self._group, self._lived))


def judge_exit(code: int, watch: OOMWatch | None) -> tuple[str, str]:
    """Why a process the runtime did not stop ended with ``code``: ``(reason, message)``,
    the reason ``OOMKilled`` where the OOM killer had a hand in it, else ``Error``."""
    message = describe_exit(code)
    if watch is None:
        return "Error", message
    if code == -signal.SIGKILL:
        evidence = watch.killed()
        if evidence is None:
            return "OOMKilled", f"{message}, not by LLMOS: most likely the kernel's OOM killer"
        if evidence:
            return "OOMKilled", f"{message}, by the kernel's OOM killer (out of memory)"
        return "Error", message
    if watch.killed_inside():
        return (
            "OOMKilled",
            f"{message} after the kernel's OOM killer killed one of its processes (out of memory)",
        )
    return "Error", message


async def lived_through(
    proc: asyncio.subprocess.Process, watch: OOMWatch, settle_seconds: float
) -> int:
    """How many new OOM kills in its own cgroup the running ``proc`` lived through.

    On cgroup v1 the OOM killer ends the group's largest process, not the whole replica
    (v2 ends it all, ``memory.oom.group``): a Ray node loses a task's worker, Jupyter a
    kernel, and runs on. A process that exits within ``settle_seconds`` of the kill is
    left to :func:`judge_exit`, which names the kill as the exit's cause.
    """
    kills, counters = watch.inside()
    if not kills:
        return 0
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(proc.wait(), settle_seconds)
    if proc.returncode is not None:
        return 0
    watch.lived_through(counters)
    return kills
