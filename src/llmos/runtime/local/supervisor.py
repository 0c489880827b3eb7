"""Keep one replica running: start, probe, restart with backoff, stop.

``LocalRuntime`` creates one :class:`Supervisor` per replica key and spec; its
task owns the replica's process from spawn to reaping. The loop:

1. wait out the restart delay (none the first time);
2. take a port, render argv and env, spawn; a spawn error (missing
   executable, bad cwd) counts as a failure and becomes the status message;
3. while it runs, pump its output into the replica's :class:`LogBook` and
   probe its health: healthy makes it Ready; never healthy within
   ``startup_timeout_seconds`` restarts it; ``failure_threshold`` failures in a
   row after Ready make it Unhealthy, and still failing
   ``Timing.unhealthy_restart_after`` seconds later restarts it;
4. when it exits (or is stopped for failing health), SIGTERM what is left of
   its process group, SIGKILL after ``grace_seconds``, and record the failure:
   the delay doubles from ``backoff_initial`` to ``backoff_max`` and starts
   over once the replica has been Ready for ``backoff_reset_after``;
   ``crashloop_exits`` failures within ``crashloop_window`` show as CrashLoop
   (still retried) with the last output lines and the exit code or signal.

Every exit is also kept as the status's ``last_termination`` (what Kubernetes
calls ``lastState``), which survives the restart: its ``count`` says a new
exit happened, its ``reason`` why. A process killed by a SIGKILL the runtime
did not send is ``OOMKilled`` when the kernel's OOM-kill counters rose while
it ran (``oom.py``), or when none can be read. An OOM kill in the replica's cgroup
that it lives through (cgroup v1 ends one process, not the group) counts in the
status's ``oom_kills``.

A replica without a health check (or without a port) is Ready while its
process runs. A process whose last output says its address is in use is
restarted on another port, at once and without counting as a failure up to
``Timing.port_retries`` times (reset when a health probe passes). Any
unexpected error in the loop is logged and treated as a failed start; it never
ends the loop. Exit codes follow Python's convention: -9 means SIGKILL.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

from llmos.runtime.base import (
    HealthCheck,
    Limits,
    Phase,
    ReplicaSpec,
    ReplicaStatus,
    Termination,
)
from llmos.runtime.local.backoff import Backoff
from llmos.runtime.local.cgroups import Cgroup, CgroupError, CgroupTree
from llmos.runtime.local.environ import render_command, render_env
from llmos.runtime.local.health import probe
from llmos.runtime.local.logs import LogBook
from llmos.runtime.local.oom import OOMWatch, judge_exit, lived_through
from llmos.runtime.local.ports import PortPool, looks_like_port_clash
from llmos.runtime.local.process import (
    describe_spawn_error,
    kill_group,
    read_stat,
    spawn,
    terminate,
)
from llmos.runtime.local.sandbox import exit_code, seal_env
from llmos.runtime.local.state import ProcessRecord, StateDir
from llmos.runtime.local.timing import Timing

__all__ = ["Supervisor"]

log = logging.getLogger(__name__)

Publish = Callable[[ReplicaStatus, ReplicaSpec], None]


class Supervisor:
    """The task that keeps one :class:`ReplicaSpec` running."""

    def __init__(
        self,
        spec: ReplicaSpec,
        spec_hash: str,
        *,
        book: LogBook,
        state: StateDir,
        ports: PortPool,
        timing: Timing,
        clock: Callable[[], float],
        publish: Publish,
        cgroups: CgroupTree | None = None,
    ) -> None:
        self.spec = spec
        self.spec_hash = spec_hash
        self.status = ReplicaStatus(key=spec.key, phase=Phase.STARTING, ready=False)
        self._book, self._state, self._ports = book, state, ports
        self._timing, self._clock, self._publish = timing, clock, publish
        self._stopping = asyncio.Event()
        self._attempted = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._backoff = Backoff(timing)
        self._attempts = 0
        self._delay = 0.0
        self._port: int | None = None
        self._clash_retries = 0
        self._port_clashed = False
        self._ever_ready = False
        self._first_line = 0  # the log book's mark when the current process started
        self._exits = 0
        self._oom_exits = 0
        self._oom: OOMWatch | None = None
        self._cgroups = cgroups
        self._cgroup: Cgroup | None = None

    # -- owner's interface ---------------------------------------------------

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name=f"replica {self.spec.key}")

    async def first_attempt(self) -> ReplicaStatus:
        """The status once the first start has been tried (running, or why it could not)."""
        await self._attempted.wait()
        return self.status

    async def stop(self, *, publish: bool = True) -> None:
        """Stop the process (SIGTERM, SIGKILL after grace) and end the task."""
        self._stopping.set()
        self._attempted.set()
        if self._task is not None:
            try:
                await self._task
            except asyncio.CancelledError:
                current = asyncio.current_task()
                if current is not None and current.cancelling():
                    self._task.cancel()  # our caller is being cancelled: stop at once
                    raise
                # Otherwise the supervision task itself was cancelled earlier (a stop()
                # cancelled mid-way); it killed its process then, so it is over.
        self._ports.release(self._port)
        self._port = None
        if self._cgroup is not None:
            self._cgroup.remove()
            self._cgroup = None
        if publish:
            self._set(phase=Phase.STOPPED, ready=False, pid=None, message="stopped")

    # -- the loop ------------------------------------------------------------

    async def _run(self) -> None:
        while not self._stopping.is_set():
            if self._delay > 0:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._stopping.wait(), self._delay)
                    break
            self._delay = 0.0
            try:
                await self._attempt()
            except Exception as exc:  # a bug here must not end supervision
                log.exception("replica %s: supervisor error", self.spec.key)
                self._fail(None, f"internal error while supervising: {exc}", lines=())
            self._attempted.set()

    async def _attempt(self) -> None:
        spec = self.spec
        port = spec.port
        if port is None and spec.wants_port:
            port = self._ports.allocate(self._port, reuse=not self._port_clashed)
            self._port = port
        self._port_clashed = False
        argv, env = render_command(spec, port), render_env(spec, port, os.environ)
        self._attempts += 1
        try:
            joined = self._join_cgroup()
            # Counted from before its start: one killed at once (a limit below what it needs
            # to start) is an OOM kill too.
            self._oom = OOMWatch(group=self._cgroup.memory) if self._cgroup else None
            proc = await spawn(argv, seal_env(argv, env), spec.cwd, joined)
        except CgroupError as exc:
            self._set(restarts=self._attempts - 1)
            self._fail(None, str(exc), lines=(), why="FailedStart")
            return
        except OSError as exc:
            self._set(restarts=self._attempts - 1)
            self._fail(
                None,
                describe_spawn_error(exc, argv, spec.cwd, env.get("PATH", "")),
                lines=(),
                why="FailedStart",
            )
            return
        try:
            reason = await self._run_process(proc, port)
        except BaseException:
            # Whatever went wrong, never leave a process behind that nobody watches.
            kill_group(proc.pid, signal.SIGKILL)
            self._state.drop(spec.key)
            raise
        if self._stopping.is_set():
            return
        code = None if proc.returncode is None else exit_code(argv, proc.returncode)
        why = "Error" if reason is None else "Unhealthy"
        if reason is None and code is not None:
            # Not ours: every SIGKILL the runtime sends while it watches ends in a stop or
            # a health reason above.
            why, reason = judge_exit(code, self._oom)
        self._after_exit(code, f"{argv[0]!r} {reason}", why)

    def _join_cgroup(self) -> tuple[Path, ...]:
        """The ``cgroup.procs`` files the process joins: its cgroup (with its limits, if any),
        where there are cgroups."""
        tree = self._cgroups
        if tree is None or not tree.usable:
            return ()
        self._cgroup = tree.make(self.spec.key, self.spec.limits or Limits())
        return self._cgroup.procs

    async def _run_process(self, proc: asyncio.subprocess.Process, port: int | None) -> str | None:
        """Record, announce and watch a freshly spawned process until it is gone."""
        spec = self.spec
        if self._oom is None:  # no cgroup of its own: read where it landed
            self._oom = OOMWatch(proc.pid)
        stat = read_stat(proc.pid)
        if stat is not None:
            record = ProcessRecord(
                spec.key, proc.pid, proc.pid, stat.starttime, self.spec_hash, spec.grace_seconds
            )
            self._state.save(record)
        started = self._clock()
        self._first_line = self._book.count
        probed = spec.health is not None and port is not None
        self._ever_ready = not probed
        if not probed:
            self._backoff.ready(started)
        self._set(
            phase=Phase.STARTING if probed else Phase.READY,
            ready=not probed,
            pid=proc.pid,
            port=port,
            restarts=self._attempts - 1,
            message="",
            last_lines=(),
            started_at=time.time(),
        )
        self._attempted.set()
        return await self._watch(proc, port, started)

    async def _watch(
        self, proc: asyncio.subprocess.Process, port: int | None, started: float
    ) -> str | None:
        """Run until the process exits, fails its health checks, or we are stopped.

        Returns why a healthy-looking process was stopped, None otherwise. Always
        leaves the process group gone and the state record dropped.
        """
        tasks: dict[str, asyncio.Task[Any]] = {
            "exit": asyncio.create_task(proc.wait()),
            "stop": asyncio.create_task(self._stopping.wait()),
        }
        if self.spec.health is not None and port is not None:
            tasks["health"] = asyncio.create_task(self._probe_loop(self.spec.health, port, started))
        if self._cgroup is not None and self._oom is not None and self._oom.ends_one_process:
            tasks["oom"] = asyncio.create_task(self._oom_loop(proc, self._oom))
        pump = asyncio.create_task(self._book.pump(proc.stdout)) if proc.stdout else None
        reason: str | None = None
        try:
            done, _ = await asyncio.wait(tasks.values(), return_when=asyncio.FIRST_COMPLETED)
            if tasks.get("health") in done:
                reason = tasks["health"].result()
        except asyncio.CancelledError:
            kill_group(proc.pid, signal.SIGKILL)
            raise
        finally:
            for task in tasks.values():
                task.cancel()
        # Stopped, unhealthy or exited: in every case the rest of its group must go too, and
        # what left the group (its own session) but not its cgroup.
        await terminate(proc, self.spec.grace_seconds)
        if self._cgroup is not None and (left := self._cgroup.kill()):
            log.info("replica %s: killed %d process(es) it left behind", self.spec.key, left)
            for _ in range(100):  # at most a second for them to exit
                if self._cgroup.empty():
                    break
                await asyncio.sleep(0.01)
        if pump is not None:
            with contextlib.suppress(TimeoutError):
                # A leftover grandchild in another session may hold the pipe open.
                await asyncio.wait_for(pump, self._timing.log_drain_seconds)
        self._state.drop(self.spec.key)
        return reason

    async def _probe_loop(self, check: HealthCheck, port: int, started: float) -> str:
        """Probe until the replica must be restarted; return why."""
        target = f"GET {check.path} on port {port}"
        failures = 0
        unhealthy_since: float | None = None
        while True:
            ok = await probe(port, check.path, check.timeout_seconds)
            now = self._clock()
            if ok:
                failures, unhealthy_since = 0, None
                if not self.status.ready:
                    self._ever_ready = True
                    self._clash_retries = 0
                    self._backoff.ready(now)
                    self._set(phase=Phase.READY, ready=True, message="")
            elif not self._ever_ready:
                if now - started >= check.startup_timeout_seconds:
                    return f"did not become healthy within {check.startup_timeout_seconds:g}s ({target})"
            else:
                failures += 1
                if unhealthy_since is not None:
                    if now - unhealthy_since >= self._timing.unhealthy_restart_after:
                        return f"was unhealthy for {now - unhealthy_since:.0f}s ({target})"
                elif failures >= check.failure_threshold:
                    unhealthy_since = now
                    self._backoff.not_ready(now)
                    self._set(
                        phase=Phase.UNHEALTHY,
                        ready=False,
                        message=f"health check {target} failed {failures} times in a row; "
                        f"restarting in {self._timing.unhealthy_restart_after:g}s unless it recovers",
                        last_lines=self._book.last(self._timing.last_lines, since=self._first_line),
                    )
            period = check.period_seconds
            if not self._ever_ready:
                period = min(period, self._timing.startup_probe_period)
            await asyncio.sleep(period)

    async def _oom_loop(self, proc: asyncio.subprocess.Process, watch: OOMWatch) -> None:
        """Count the OOM kills in the replica's cgroup that it lives through (never returns)."""
        timing = self._timing
        while True:
            await asyncio.sleep(timing.oom_poll_seconds)
            kills = await lived_through(proc, watch, timing.oom_settle_seconds)
            if kills:
                log.warning(
                    "replica %s: the OOM killer ended %d of its processes", self.spec.key, kills
                )
                self._set(oom_kills=self.status.oom_kills + kills)

    # -- failures ------------------------------------------------------------

    def _after_exit(self, code: int | None, message: str, why: str) -> None:
        lines = self._book.last(self._timing.last_lines, since=self._first_line)
        # Restart on another port either way; a port the caller reserved cannot change,
        # so its clash backs off like any other failure.
        self._port_clashed = self.spec.port is None and looks_like_port_clash(lines)
        if self._port_clashed and self._clash_retries < self._timing.port_retries:
            self._clash_retries += 1
            message = f"{message}: its port was taken; retrying at once on another port"
            self._set(
                phase=Phase.BACKOFF,
                ready=False,
                pid=None,
                last_exit_code=code,
                message=message,
                last_lines=lines,
                last_termination=self._termination(why, message, code, lines),
                oom_exits=self._oom_exits,
            )
            return
        self._fail(code, message, lines=lines, why=why)

    def _termination(
        self, why: str, message: str, code: int | None, lines: tuple[str, ...]
    ) -> Termination:
        self._exits += 1
        self._oom_exits += why == "OOMKilled"
        return Termination(self._exits, why, message, code, lines)

    def _fail(
        self, code: int | None, message: str, *, lines: tuple[str, ...], why: str = "Error"
    ) -> None:
        verdict = self._backoff.failed(self._clock())
        self._delay = verdict.delay
        phase = Phase.BACKOFF
        if verdict.crash_loop:
            phase = Phase.CRASHLOOP
            window = self._timing.crashloop_window
            message += f"; {verdict.recent_failures} failures in {window:g}s"
        self._set(
            last_termination=self._termination(why, message, code, lines),
            oom_exits=self._oom_exits,
            phase=phase,
            ready=False,
            pid=None,
            last_exit_code=code if code is not None else self.status.last_exit_code,
            message=f"{message}; restarting in {self._delay:g}s",
            last_lines=lines,
        )

    def _set(self, **changes: Any) -> None:
        status = replace(self.status, **changes)
        if status != self.status:
            self.status = status
            self._publish(status, self.spec)
