"""``LocalRuntime``: the embedded-mode :class:`~llmos.runtime.base.Runtime`.

The server creates one, calls ``start()`` before the controllers run and
``stop()`` after they end; the ModelService, Notebook and MLCluster
controllers call ``ensure``/``remove``/``forget_logs`` and listen with
``on_status``; ``llmos logs`` and the API read ``logs()``. Each replica is one process on this machine, kept running by a
:class:`~llmos.runtime.local.supervisor.Supervisor` task that this object
owns; ``stop()`` ends all of them.

After a server restart, replicas are *cleanly restarted*, not adopted:
``start()`` kills what the previous server left running (matched by pid and
process start time from the state files, see ``state.py``), and the
controllers ``ensure()`` the replicas again. Children also carry
``PR_SET_PDEATHSIG(SIGKILL)``, so a ``kill -9`` of the server takes them down
at once. Layout on disk: ``<state_dir>/.lock`` and one ``<name>.json`` per
running process; ``<log_dir>/<name>.log`` (+ ``.1``..``.3``) per replica,
where ``<name>`` is the key with ``/`` turned into ``_`` (``logs.log_file_name``).

A replica's log files outlive ``remove()`` (a scale-down, a stop, a server
restart): the same key writes on where they end. They go with
``forget_logs(prefix)``, which the controllers call when the object that owns
the replicas is deleted, so a new object of the same name starts with none.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import logging
import time
from collections.abc import AsyncIterator, Callable, Collection
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING

from llmos._lib.errors import Reason
from llmos.runtime.base import ReplicaSpec, ReplicaStatus, Runtime, StatusHandler
from llmos.runtime.local.cgroups import CgroupTree
from llmos.runtime.local.errors import LocalRuntimeError
from llmos.runtime.local.logfiles import delete_logs
from llmos.runtime.local.logs import LogBook, log_file_name, read_lines
from llmos.runtime.local.ports import PortPool
from llmos.runtime.local.state import StateDir, sweep_survivors
from llmos.runtime.local.supervisor import Supervisor
from llmos.runtime.local.timing import Timing

__all__ = ["LocalRuntime", "spec_hash"]

log = logging.getLogger(__name__)


def spec_hash(spec: ReplicaSpec) -> str:
    """A digest of everything in ``spec``: equal specs, equal digests."""
    canonical = json.dumps(asdict(spec), sort_keys=True, default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()[:16]


class LocalRuntime:
    """Runs each replica as a supervised process on this machine."""

    def __init__(
        self,
        state_dir: Path,
        log_dir: Path,
        *,
        timing: Timing | None = None,
        clock: Callable[[], float] = time.monotonic,
        cgroups: bool = True,
    ) -> None:
        """``timing`` defaults to :class:`Timing`'s production values; ``clock`` paces backoff;
        ``cgroups``: whether replicas get cgroups of their own (limits, no leftovers)."""
        self._state = StateDir(state_dir)
        self._log_dir = log_dir
        self._timing = timing or Timing()
        self._clock = clock
        self._ports = PortPool()
        self._supervisors: dict[str, Supervisor] = {}
        self._books: dict[str, LogBook] = {}
        self._logged: set[str] = set()  # keys that had a book since start, for forget_logs
        self._locks: dict[str, asyncio.Lock] = {}
        self._handlers: list[StatusHandler] = []
        self._started = False
        self._stopped = False
        self._cgroups: CgroupTree | None = None
        self._wants_cgroups = cgroups

    async def start(self) -> None:
        """Take the state dir, kill what a previous server left running, begin supervising."""
        if self._stopped:
            raise LocalRuntimeError("this runtime was stopped; create a new one to start again")
        if self._started:
            return
        self._state.acquire()
        self._log_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        try:
            killed = await sweep_survivors(self._state, self._timing.survivor_grace)
        except BaseException:
            self._state.release()
            raise
        if killed:
            log.warning("stopped %d process(es) left running by a previous server", killed)
        if self._wants_cgroups:
            await self._take_cgroups()
        self._started = True

    async def _take_cgroups(self) -> None:
        """Find where replicas' cgroups go, and kill what a dead server's replicas left there."""
        # One tree per state dir: its path, and which dir it is (another mount namespace's
        # server may have the same path in a cgroup both see).
        state = self._state.path.resolve()
        seen = state.stat()
        ident = f"{state}\0{seen.st_dev}\0{seen.st_ino}".encode()
        tree = "llmos-" + hashlib.sha256(ident).hexdigest()[:8]
        self._cgroups = await asyncio.to_thread(CgroupTree.find, tree)
        if not self._cgroups.usable:
            log.warning(
                "workloads' memory limits and CPU shares are not enforced: %s",
                self._cgroups.problem,
            )
            return
        if left := await asyncio.to_thread(self._cgroups.sweep):
            log.warning("killed %d process(es) a previous server's replicas left", left)
        where = ", ".join(sorted({str(p) for p in self._cgroups.parents.values()}))
        log.info("workloads' memory limits and CPU shares: cgroups under %s", where)

    @property
    def limits_problem(self) -> str | None:
        """Why replicas' memory and CPU limits cannot be enforced here; None when they are."""
        if self._cgroups is None:
            return "the runtime has not started" if self._wants_cgroups else "not asked for"
        return self._cgroups.problem

    async def stop(self) -> None:
        """Stop every replica (SIGTERM, SIGKILL after its grace) and release the state dir."""
        if self._stopped:
            return
        self._stopped = True
        await asyncio.gather(*(self._remove(key) for key in list(self._supervisors)))
        if self._cgroups is not None:
            self._cgroups.close()
        self._state.release()

    async def ensure(self, spec: ReplicaSpec) -> ReplicaStatus:
        """Run ``spec``; returns once its first start was tried. Same spec: no-op; changed: restart."""
        self._check_usable()
        if not spec.key:
            raise LocalRuntimeError("replica key is empty", reason=Reason.INVALID)
        if not spec.command or not spec.command[0]:
            raise LocalRuntimeError(
                f"replica {spec.key!r}: command is empty; give the program to run",
                reason=Reason.INVALID,
            )
        digest = spec_hash(spec)
        async with self._lock(spec.key):
            self._check_usable()  # stop() may have run while we waited
            current = self._supervisors.get(spec.key)
            if current is not None:
                if current.spec_hash == digest:
                    return current.status
                log.info("replica %s: spec changed, restarting", spec.key)
                await current.stop(publish=False)
            book = self._books.get(spec.key)
            if book is None:
                book = self._books[spec.key] = LogBook(
                    self._log_dir / log_file_name(spec.key), self._timing
                )
                self._logged.add(spec.key)
            supervisor = Supervisor(
                spec,
                digest,
                book=book,
                state=self._state,
                ports=self._ports,
                timing=self._timing,
                clock=self._clock,
                publish=self._publish,
                cgroups=self._cgroups,
            )
            self._supervisors[spec.key] = supervisor
            supervisor.start()
            return await supervisor.first_attempt()

    async def remove(self, key: str) -> None:
        """Stop the replica for good (no-op for an unknown key); its log file stays."""
        await self._remove(key)

    def forget_logs(self, prefix: str, *, keep: Collection[str] = ()) -> int:
        """Delete the log files (every rotation) of the replicas under ``prefix`` that do not run.

        Not those under a ``keep`` prefix, nor a replica this runtime runs (its
        follower would lose the file under it). Returns how many replicas' logs went.
        """
        if not prefix:
            raise LocalRuntimeError("forget_logs needs a key prefix", reason=Reason.INVALID)
        deleted = set(
            delete_logs(self._log_dir, prefix, keep=keep, spare=self._books, known=self._logged)
        )
        self._logged -= {key for key in self._logged if log_file_name(key) in deleted}
        if deleted:
            log.info("deleted the logs of %d replica(s) under %s", len(deleted), prefix)
        return len(deleted)

    def status(self, key: str) -> ReplicaStatus | None:
        supervisor = self._supervisors.get(key)
        return supervisor.status if supervisor is not None else None

    def keys(self, prefix: str = "") -> list[str]:
        return sorted(key for key in self._supervisors if key.startswith(prefix))

    def spec(self, key: str) -> ReplicaSpec | None:
        """What the replica of ``key`` runs, as last ensured."""
        supervisor = self._supervisors.get(key)
        return supervisor.spec if supervisor is not None else None

    def on_status(self, handler: StatusHandler) -> None:
        """Call ``handler(status, spec)`` on the event loop after every status change."""
        self._handlers.append(handler)

    def logs(
        self, key: str, *, follow: bool = False, tail: int | None = None
    ) -> AsyncIterator[str]:
        """Lines of the current log file (the last ``tail``, or all), then new ones if ``follow``.

        A follow ends when the replica is removed. A key no longer supervised
        still has its file read (without following), until ``forget_logs``.
        An unknown key raises here, before any line is asked for.
        """
        book = self._books.get(key)
        if book is not None:
            return _lines_of(book, tail, follow)
        path = self._log_dir / log_file_name(key)
        if not path.exists():
            raise LocalRuntimeError(
                f"no replica {key!r} and no logs for it", reason=Reason.NOT_FOUND
            )
        return _lines_of_file(path, tail)

    # -- internals -----------------------------------------------------------

    def _check_usable(self) -> None:
        if self._stopped:
            raise LocalRuntimeError("the runtime is stopped", reason=Reason.SERVICE_UNAVAILABLE)
        if not self._started:
            raise LocalRuntimeError("call LocalRuntime.start() before ensure()")

    def _lock(self, key: str) -> asyncio.Lock:
        return self._locks.setdefault(key, asyncio.Lock())

    async def _remove(self, key: str) -> None:
        async with self._lock(key):
            supervisor = self._supervisors.get(key)
            if supervisor is not None:
                await supervisor.stop()
                del self._supervisors[key]
            book = self._books.pop(key, None)
            if book is not None:
                book.close()

    def _publish(self, status: ReplicaStatus, spec: ReplicaSpec) -> None:
        for handler in list(self._handlers):
            try:
                handler(status, spec)
            except Exception:
                log.exception("status handler %r failed for replica %s", handler, status.key)


async def _lines_of(book: LogBook, tail: int | None, follow: bool) -> AsyncIterator[str]:
    async with contextlib.aclosing(book.lines(tail, follow)) as lines:
        async for line in lines:
            yield line


async def _lines_of_file(path: Path, tail: int | None) -> AsyncIterator[str]:
    for line in read_lines(path, tail):  # [] if the file was deleted meanwhile
        yield line


if TYPE_CHECKING:  # mypy proves LocalRuntime satisfies the Runtime protocol

    def _is_a_runtime(runtime: LocalRuntime) -> Runtime:
        return runtime
