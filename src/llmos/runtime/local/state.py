"""What this runtime has running, on disk, so a restarted server can clean up.

The supervisor saves a :class:`ProcessRecord` (pid, its start time from
``/proc/PID/stat``, process group, key, spec hash) when a replica starts and
drops it once the process and its group are gone. ``LocalRuntime.start()``
takes the state dir's lock, then :func:`sweep_survivors` kills whatever a
previous server (one that died without stopping its replicas) left behind.
Replicas are *cleanly restarted*, not adopted: the controllers ``ensure()``
them again, and they start fresh on a new process.

A pid is only ever signalled while its start time still matches the one
recorded, so a recycled pid is never killed. The lock (``flock`` on
``<state_dir>/.lock``) keeps a second live server from sweeping away the first
one's replicas; the kernel releases it when the holder dies.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import json
import logging
import os
import signal
from dataclasses import asdict, dataclass
from pathlib import Path

from llmos._lib.errors import Reason
from llmos.runtime.local.errors import LocalRuntimeError
from llmos.runtime.local.logs import log_file_name
from llmos.runtime.local.process import group_members, read_stat

__all__ = ["ProcessRecord", "StateDir", "sweep_survivors"]

log = logging.getLogger(__name__)

_POLL_SECONDS = 0.05


@dataclass(frozen=True)
class ProcessRecord:
    """One running replica process, as saved in ``<state_dir>/<key>.json``."""

    key: str
    pid: int
    pgid: int
    starttime: int
    spec_hash: str
    grace_seconds: float


class StateDir:
    """The directory of process records, and the lock that says who owns it."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock_fd: int | None = None

    def acquire(self) -> None:
        """Take the lock, or raise if another live process holds it."""
        self.path.mkdir(parents=True, exist_ok=True, mode=0o700)
        fd = os.open(self.path / ".lock", os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.read(fd, 32).decode(errors="replace").strip() or "another process"
            os.close(fd)
            raise LocalRuntimeError(
                f"the runtime state dir {str(self.path)!r} is in use by pid {holder}; "
                "stop that server first or give this one its own data dir",
                reason=Reason.CONFLICT,
            ) from None
        os.ftruncate(fd, 0)
        os.write(fd, str(os.getpid()).encode())
        self._lock_fd = fd

    def release(self) -> None:
        if self._lock_fd is not None:
            os.close(self._lock_fd)  # closing drops the flock
            self._lock_fd = None

    def _file(self, key: str) -> Path:
        return self.path / (log_file_name(key).removesuffix(".log") + ".json")

    def save(self, record: ProcessRecord) -> None:
        """Write ``record`` atomically (0600)."""
        target = self._file(record.key)
        tmp = target.with_name(target.name + ".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as file:
            json.dump(asdict(record), file)
        os.replace(tmp, target)

    def drop(self, key: str) -> None:
        with contextlib.suppress(FileNotFoundError):
            self._file(key).unlink()

    def load(self) -> list[ProcessRecord]:
        """Every readable record; unreadable files are logged and deleted."""
        records = []
        for file in sorted(self.path.glob("*.json")):
            try:
                records.append(ProcessRecord(**json.loads(file.read_text())))
            except (OSError, ValueError, TypeError) as exc:
                log.warning("ignoring unreadable runtime state file %s: %s", file, exc)
                file.unlink(missing_ok=True)
        return records


def _survivors(record: ProcessRecord) -> dict[int, int]:
    """Pid -> start time of the processes ``record`` left behind that are still alive."""
    leader = read_stat(record.pid)
    if leader is not None and leader.starttime != record.starttime:
        # The pid was recycled. The kernel does not hand out a pid still used as a
        # process group id, so group ``pgid`` was empty then: nothing of ours is left.
        return {}
    found = {}
    for pid in group_members(record.pgid):
        stat = read_stat(pid)
        # Members were forked after the leader; an older process is not one of ours.
        if stat is not None and stat.starttime >= record.starttime:
            found[pid] = stat.starttime
    return found


def _signal_matching(targets: dict[int, int], sig: int) -> dict[int, int]:
    """Signal each target whose start time still matches (0: just look); return those alive."""
    alive = {}
    for pid, starttime in targets.items():
        stat = read_stat(pid)
        if stat is None or stat.starttime != starttime or stat.state == "Z":
            continue
        alive[pid] = starttime
        if sig != 0:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, sig)
    return alive


async def _kill(record: ProcessRecord, grace: float) -> int:
    targets = _survivors(record)
    if not targets:
        return 0
    log.warning(
        "replica %s: stopping %d process(es) left by a previous server (pids %s)",
        record.key,
        len(targets),
        ", ".join(map(str, sorted(targets))),
    )
    loop = asyncio.get_running_loop()
    deadline = loop.time() + grace
    alive = _signal_matching(targets, signal.SIGTERM)
    while alive and loop.time() < deadline:
        await asyncio.sleep(_POLL_SECONDS)
        alive = _signal_matching(alive, 0)
    _signal_matching(alive, signal.SIGKILL)
    return len(targets)


async def sweep_survivors(state: StateDir, max_grace: float) -> int:
    """Kill what the records in ``state`` left running; delete the records. Returns the count."""
    records = state.load()
    counts = await asyncio.gather(*(_kill(r, min(r.grace_seconds, max_grace)) for r in records))
    for record in records:
        state.drop(record.key)
    return sum(counts)
