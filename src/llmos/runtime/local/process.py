"""Start, inspect and stop one replica process and its process group.

Called by the supervisor (spawn, terminate) and by the survivor sweep in
``state.py`` (``read_stat``, ``group_members``). Every child starts in a
session of its own, so its process group id is its pid and everything it forks
can be signalled at once. Before ``exec`` the child asks the kernel for
``PR_SET_PDEATHSIG(SIGKILL)``: if the server dies, even by ``kill -9``, the
kernel kills the child. The kernel ties that signal to the *thread* that
forked, which is the event loop's thread, so the loop running the runtime must
outlive it (it does: ``LocalRuntime.stop()`` runs on that loop). Grandchildren
do not inherit the death signal; the state-file sweep on the next start
catches those.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import errno
import os
import signal
import subprocess
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from llmos.runtime.local.cgroups import CgroupError

__all__ = [
    "ProcStat",
    "describe_exit",
    "describe_spawn_error",
    "group_alive",
    "group_members",
    "kill_group",
    "read_stat",
    "spawn",
    "terminate",
]

_PR_SET_PDEATHSIG = 1
_POLL_SECONDS = 0.05


@dataclass(frozen=True)
class ProcStat:
    """The fields of ``/proc/PID/stat`` we rely on."""

    state: str
    pgrp: int
    starttime: int  # clock ticks after boot; with the pid, names one process for good


def read_stat(pid: int) -> ProcStat | None:
    """``/proc/PID/stat`` of a process, or None when there is no such process."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_bytes().decode("utf-8", "replace")
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return None
    # comm (field 2) may hold spaces and parentheses: split after the last ')'.
    fields = raw[raw.rfind(")") + 2 :].split()
    return ProcStat(state=fields[0], pgrp=int(fields[2]), starttime=int(fields[19]))


def group_members(pgid: int) -> list[int]:
    """Pids of the live (non-zombie) processes in group ``pgid``."""
    members = []
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            stat = read_stat(int(entry.name))
            if stat is not None and stat.pgrp == pgid and stat.state != "Z":
                members.append(int(entry.name))
    return members


def group_alive(pgid: int) -> bool:
    """Whether group ``pgid`` has a live member (zombies left to a non-reaping init do not count)."""
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass
    return bool(group_members(pgid))


def kill_group(pgid: int, sig: signal.Signals) -> None:
    """Send ``sig`` to every process in group ``pgid``, if any is left."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)


def _child_setup(cgroups: Sequence[int]) -> Callable[[], None] | None:
    """What the child does between fork and exec: ask for the death signal, join its cgroups
    (``cgroups``: the parent's open ``cgroup.procs`` files, where ``0`` means "me")."""
    if not sys.platform.startswith("linux"):
        return None
    prctl = ctypes.CDLL(None, use_errno=True).prctl
    prctl.argtypes = [ctypes.c_int, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong]
    prctl.restype = ctypes.c_int
    parent = os.getpid()
    me = b"0"

    def set_up() -> None:
        # Runs in the child between fork and exec: no locks, no imports, no allocation to speak of.
        prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
        if os.getppid() != parent:  # the parent died before prctl took effect
            os.kill(os.getpid(), signal.SIGKILL)
        for fd in cgroups:
            os.write(fd, me)  # an OSError fails the spawn: it would run without its limits

    return set_up


async def spawn(
    argv: Sequence[str], env: dict[str, str], cwd: Path | None, cgroups: Sequence[Path] = ()
) -> asyncio.subprocess.Process:
    """Start ``argv`` in a new session, stdout and stderr merged into one pipe, in the cgroups
    whose ``cgroup.procs`` files are ``cgroups`` from its first instruction.

    Raises ``OSError`` when it cannot be started (turn it into words with
    :func:`describe_spawn_error`), :class:`CgroupError` when it cannot join a cgroup.
    """
    fds: list[int] = []
    try:
        for path in cgroups:
            fds.append(os.open(path, os.O_WRONLY | os.O_CLOEXEC))
        return await asyncio.create_subprocess_exec(
            *argv,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
            env=env,
            cwd=cwd,
            start_new_session=True,
            # Built per call: the parent pid it checks must be the current one (after any fork).
            preexec_fn=_child_setup(fds),
        )
    except subprocess.SubprocessError as exc:  # the child's setup raised
        raise CgroupError(f"cannot join its cgroup ({', '.join(map(str, cgroups))})") from exc
    except OSError as exc:
        if len(fds) < len(cgroups):  # opening a cgroup.procs file failed
            raise CgroupError(f"cannot join its cgroup: {exc.strerror or exc}") from exc
        raise
    finally:
        for fd in fds:
            os.close(fd)


def describe_spawn_error(exc: OSError, argv: Sequence[str], cwd: Path | None, path: str) -> str:
    """A plain sentence for why ``argv`` could not be started."""
    program = argv[0]
    # Look at the directory itself: asyncio names it in the error, uvloop does not.
    if cwd is not None and not cwd.is_dir():
        problem = "is not a directory" if cwd.exists() else "does not exist"
        return f"cannot start {program!r}: working directory {str(cwd)!r} {problem}"
    if isinstance(exc, FileNotFoundError):
        where = "" if "/" in program else f" on PATH ({path})"
        return f"cannot start {program!r}: executable not found{where}"
    if isinstance(exc, PermissionError) or exc.errno == errno.EACCES:
        return f"cannot start {program!r}: permission denied (is it executable?)"
    return f"cannot start {program!r}: {exc.strerror or exc}"


def describe_exit(returncode: int) -> str:
    """``exited with code 3`` or ``was killed by signal SIGKILL (9)``."""
    if returncode >= 0:
        return f"exited with code {returncode}"
    try:
        name = signal.Signals(-returncode).name
    except ValueError:
        name = "signal"
    return f"was killed by signal {name} ({-returncode})"


async def terminate(proc: asyncio.subprocess.Process, grace: float) -> None:
    """SIGTERM the process group, SIGKILL it after ``grace`` seconds; wait for the leader."""
    pgid = proc.pid
    loop = asyncio.get_running_loop()
    deadline = loop.time() + max(grace, 0.0)
    kill_group(pgid, signal.SIGTERM)
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(proc.wait(), timeout=max(grace, 0.0))
    # The leader is gone (or out of time); give the rest of its group what is left of the grace.
    while proc.returncode is not None and group_alive(pgid) and loop.time() < deadline:
        await asyncio.sleep(_POLL_SECONDS)
    if proc.returncode is None or group_alive(pgid):
        kill_group(pgid, signal.SIGKILL)
    await proc.wait()
