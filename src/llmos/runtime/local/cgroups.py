"""Memory limits and CPU shares for replica processes: a cgroup each, under the server's own.

A replica whose spec carries :class:`~llmos.runtime.base.Limits` starts in the
cgroup ``<the server's cgroup>/llmos-<state dir's hash>/<key, / as _>`` (one
tree per server: tests run several at once), limited by:

- ``memory``: ``memory.max`` (cgroup v2) or ``memory.limit_in_bytes`` (v1).
  Past it the kernel's OOM killer ends the replica, which the supervisor
  reports as ``OOMKilled``;
- ``cpus``: its CPU weight, ``cpu.weight`` (v2) or ``cpu.shares`` (v1), as
  Kubernetes turns a CPU request into one: when the machine's cores are all
  busy, replicas share them in proportion to their ``cpus``; an idle core is
  anyone's (no quota, as LLMOS's pods get none in cluster mode: a Ray head
  held to one core took 17-18 s instead of 12-13 s to take its first job).
  All replicas together weigh as much as the whole machine's cores.

The child joins its cgroup between fork and exec (it writes ``0`` to each
``cgroup.procs`` file, which the parent opened), so all it starts, the sandbox
and everything in it too, is counted from its first instruction, and a
process that leaves its session stays counted.

Where it works (:meth:`CgroupTree.find`): cgroup v1 with writable memory and
cpu hierarchies (root, in most containers), or v2 with the memory and cpu
controllers available to the server's cgroup. v2 lets a cgroup hand
controllers to children only while no process is in it: a server that is the
only process in its cgroup (a systemd service with ``Delegate=yes``) first
moves itself into ``<its cgroup>/llmos-server``. Elsewhere
:attr:`CgroupTree.problem` says why not, and replicas run without limits.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import signal
import time
from dataclasses import dataclass
from pathlib import Path

from llmos.runtime.base import Limits

__all__ = ["Cgroup", "CgroupError", "CgroupTree", "cgroup_dirs"]

log = logging.getLogger(__name__)

CONTROLLERS = ("memory", "cpu")


class CgroupError(OSError):
    """A replica's cgroup could not be made or joined; the message names it."""


def _mounts() -> list[tuple[str, Path, frozenset[str]]]:
    """(root, mount point, v1 controllers; empty for v2) of each cgroup mount."""
    found: list[tuple[str, Path, frozenset[str]]] = []
    try:
        lines = Path("/proc/self/mountinfo").read_text().splitlines()
    except OSError:
        return found
    for line in lines:
        left, _, right = line.partition(" - ")
        fields, tail = left.split(), right.split()
        if len(fields) < 5 or len(tail) < 3 or tail[0] not in ("cgroup", "cgroup2"):
            continue
        controllers = frozenset(tail[2].split(",")) if tail[0] == "cgroup" else frozenset()
        found.append((fields[3], Path(fields[4]), controllers))
    return found


def cgroup_dirs(pid: int | str = "self") -> list[tuple[frozenset[str], Path]]:
    """The directories of ``pid``'s cgroups, each with its v1 controllers (empty: v2)."""
    try:
        lines = Path(f"/proc/{pid}/cgroup").read_text().splitlines()
    except OSError:
        return []
    mounts = _mounts()
    found = []
    for line in lines:
        hierarchy, _, rest = line.partition(":")
        listed, _, path = rest.partition(":")
        v2 = hierarchy == "0" and listed == ""
        controllers = frozenset() if v2 else frozenset(listed.split(","))
        for root, point, mounted in mounts:
            if v2 != (not mounted) or (not v2 and not controllers <= mounted):
                continue
            if path != root and not path.startswith(root.rstrip("/") + "/"):
                continue
            folder = point / path[len(root) :].lstrip("/")
            if folder.is_dir():
                found.append((controllers, folder))
                break
    return found


@dataclass(frozen=True)
class Cgroup:
    """One replica's cgroup: a folder per hierarchy (one on v2; memory's and cpu's on v1)."""

    folders: tuple[Path, ...]
    memory: Path | None = None  # the one of them with the memory controller

    @property
    def procs(self) -> tuple[Path, ...]:
        return tuple(folder / "cgroup.procs" for folder in self.folders)

    def kill(self) -> int:
        """SIGKILL what is still in it (what left the replica's session); how many processes."""
        for folder in self.folders:  # cgroup v2 (Linux 5.14+): all at once, no pid races
            inside = len(_pids(folder / "cgroup.procs"))
            if inside and (folder / "cgroup.kill").exists():
                with contextlib.suppress(OSError):
                    (folder / "cgroup.kill").write_text("1")
                    return inside
        killed: set[int] = set()
        for _ in range(5):  # a process may fork while it is being killed: look again
            left = {pid for procs in self.procs for pid in _pids(procs)} - killed
            if not left:
                break
            for pid in left:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.kill(pid, signal.SIGKILL)
            killed |= left
        return len(killed)

    def empty(self) -> bool:
        """Whether no process is in it (one killed leaves once it has exited)."""
        return not any(_pids(procs) for procs in self.procs)

    def remove(self) -> bool:
        """Remove it once its processes are gone; whether it is gone."""
        gone = True
        for folder in self.folders:
            try:
                folder.rmdir()
            except FileNotFoundError:
                continue
            except OSError as exc:
                log.debug("cgroup %s stays: %s", folder, exc)
                gone = False
        return gone


class CgroupTree:
    """Where replicas' cgroups go (``<the server's cgroup>/<name>``), found once at start."""

    def __init__(self, v2: bool, parents: dict[str, Path]) -> None:
        self.v2 = v2
        self.parents = parents  # controller -> the folder replicas' cgroups go in
        self.problem: str | None = None

    @classmethod
    def find(cls, name: str = "llmos") -> CgroupTree:
        """This machine's tree (replicas' cgroups in ``<the server's cgroup>/<name>``), or one
        whose :attr:`problem` says why limits cannot be set."""
        dirs = cgroup_dirs()
        v1 = {c: folder for controllers, folder in dirs for c in controllers if c in CONTROLLERS}
        try:
            if all(c in v1 for c in CONTROLLERS):
                return cls._v1(v1, name)
            unified = next((folder for controllers, folder in dirs if not controllers), None)
            if unified is not None:
                return cls._v2(unified, name)
        except OSError as exc:
            return cls._unusable(f"cannot make cgroups here: {exc.strerror or exc}")
        return cls._unusable("no cgroup hierarchy with the memory and cpu controllers")

    @classmethod
    def _unusable(cls, problem: str) -> CgroupTree:
        tree = cls(False, {})
        tree.problem = problem
        return tree

    @classmethod
    def _v1(cls, own: dict[str, Path], name: str) -> CgroupTree:
        parents = {c: own[c] / name for c in CONTROLLERS}
        for folder in parents.values():
            folder.mkdir(exist_ok=True)
        tree = cls(False, parents)
        tree._share_the_machine()
        return tree

    @classmethod
    def _v2(cls, own: Path, name: str) -> CgroupTree:
        if own.name == "llmos-server":  # moved aside by an earlier find in this process
            own = own.parent
        available = (own / "cgroup.controllers").read_text().split()
        missing = [c for c in CONTROLLERS if c not in available]
        if missing:
            return cls._unusable(
                f"cgroup v2 gives the server's cgroup ({own}) no {' or '.join(missing)} "
                "controller: run LLMOS as a systemd service with Delegate=yes"
            )
        enable = " ".join(f"+{c}" for c in CONTROLLERS)
        try:
            (own / "cgroup.subtree_control").write_text(enable)
        except OSError as exc:
            if exc.errno != errno.EBUSY:
                raise
            # Processes in it: move the server out of the way, if it is the only one.
            inside = (own / "cgroup.procs").read_text().split()
            if inside != [str(os.getpid())]:
                return cls._unusable(
                    f"the server's cgroup ({own}) holds other processes, so cgroup v2 "
                    "cannot give controllers to replicas: run LLMOS as a systemd service "
                    "with Delegate=yes"
                )
            (own / "llmos-server").mkdir(exist_ok=True)
            (own / "llmos-server" / "cgroup.procs").write_text("0")
            (own / "cgroup.subtree_control").write_text(enable)
        parent = own / name
        parent.mkdir(exist_ok=True)
        (parent / "cgroup.subtree_control").write_text(enable)
        tree = cls(True, dict.fromkeys(CONTROLLERS, parent))
        tree._share_the_machine()
        return tree

    @property
    def usable(self) -> bool:
        return self.problem is None

    def sweep(self) -> int:
        """Kill what is left in the replicas' cgroups (a previous server's, which died with
        processes that had left their sessions), and remove them; how many processes."""
        killed = 0
        for parent in set(self.parents.values()):
            with contextlib.suppress(OSError):
                for folder in parent.iterdir():
                    if folder.is_dir():
                        group = Cgroup((folder,))
                        killed += group.kill()
                        for _ in range(100):  # at most a second for them to exit
                            if group.empty():
                                break
                            time.sleep(0.01)
                        group.remove()
        return killed

    def close(self) -> None:
        """Sweep (kill what is left in replicas' cgroups, remove them), then remove the tree's
        own folder if it is empty."""
        self.sweep()
        for parent in set(self.parents.values()):
            with contextlib.suppress(OSError):
                parent.rmdir()

    def make(self, key: str, limits: Limits) -> Cgroup:
        """The cgroup for replica ``key`` with ``limits`` written (made, or reused)."""
        if not self.usable:
            raise CgroupError(errno.ENOTSUP, self.problem)
        name = key.replace("/", "_")
        folders = {c: parent / name for c, parent in self.parents.items()}
        try:
            for folder in set(folders.values()):
                folder.mkdir(parents=True, exist_ok=True)
            self._write_limits(folders["memory"], folders["cpu"], limits)
        except OSError as exc:
            where = ", ".join(sorted({str(f) for f in folders.values()}))
            raise CgroupError(
                exc.errno, f"cannot set up its cgroup {where}: {exc.strerror}"
            ) from exc
        return Cgroup(tuple(dict.fromkeys(folders.values())), folders["memory"])

    def _write_limits(self, memory: Path, cpu: Path, limits: Limits) -> None:
        shares = _shares(1.0 if limits.cpus is None else limits.cpus)
        if self.v2:
            (memory / "memory.max").write_text(
                "max" if limits.memory is None else str(limits.memory)
            )
            _write_if_there(memory / "memory.swap.max", "max" if limits.memory is None else "0")
            # An OOM kill takes the whole replica, not just its largest process.
            _write_if_there(memory / "memory.oom.group", "1")
            (cpu / "cpu.weight").write_text(str(_weight(shares)))
            return
        # Memory plus swap may never be below memory alone: lift it, set memory, then match it
        # (no swap past the limit), where the kernel accounts swap.
        memsw = memory / "memory.memsw.limit_in_bytes"
        _write_if_there(memsw, "-1")
        value = "-1" if limits.memory is None else str(limits.memory)
        (memory / "memory.limit_in_bytes").write_text(value)
        _write_if_there(memsw, value)
        (cpu / "cpu.shares").write_text(str(shares))

    def _share_the_machine(self) -> None:
        """Give all replicas together the CPU weight of the whole machine, as Kubernetes gives
        its pods' slice: one cgroup's default weight is one process's."""
        cpu = self.parents["cpu"]
        shares = _shares(float(os.cpu_count() or 1))
        if self.v2:
            (cpu / "cpu.weight").write_text(str(_weight(shares)))
        else:
            (cpu / "cpu.shares").write_text(str(shares))


def _write_if_there(path: Path, value: str) -> None:
    if path.exists():
        path.write_text(value)


def _pids(procs: Path) -> list[int]:
    try:
        return [int(pid) for pid in procs.read_text().split()]
    except (OSError, ValueError):
        return []


def _shares(cpus: float) -> int:
    """cgroup v1 ``cpu.shares`` for ``cpus`` cores, as Kubernetes sets a CPU request's."""
    return max(int(cpus * 1024), 2)


def _weight(shares: int) -> int:
    """cgroup v2 ``cpu.weight`` for v1 ``shares`` (Kubernetes' conversion)."""
    return min(1 + ((shares - 2) * 9999) // 262142, 10000)
