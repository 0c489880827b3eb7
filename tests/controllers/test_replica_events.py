"""ReplicaEvents: which replica status changes become which Events (pure logic, no store)."""

from __future__ import annotations

import asyncio
import dataclasses
from typing import Any

from llmos.controllers.events import EventRecorder
from llmos.controllers.replica_events import ReplicaEvents
from llmos.runtime.base import Phase, ReplicaStatus, Termination

OBJ = {"kind": "Notebook", "metadata": {"name": "lab", "namespace": "default", "uid": "u"}}
KEY = "notebooks/default/lab/0"


class Recorded(EventRecorder):
    """Keeps (type, reason, message) instead of writing Events."""

    def __init__(self) -> None:
        self.seen: list[tuple[str, str, str]] = []

    async def record(
        self, obj: dict[str, Any], reason: str, message: str, type_: str = "Normal"
    ) -> None:
        self.seen.append((type_, reason, message))


def status(
    phase: Phase,
    pid: int | None,
    exits: int = 0,
    why: str = "Error",
    how: str = "exited with code 1",
) -> ReplicaStatus:
    ended = Termination(exits, why, how, 1, ("a", "b", "c")) if exits else None
    return ReplicaStatus(KEY, phase, phase == Phase.READY, pid, 4000, last_termination=ended)


def observe_all(statuses: list[ReplicaStatus], **kwargs: Any) -> list[tuple[str, str, str]]:
    recorder = Recorded()
    events = ReplicaEvents(recorder)

    async def main() -> None:
        for st in statuses:
            await events.observe(OBJ, "the notebook", st, **kwargs)

    asyncio.run(main())
    return recorder.seen


def test_start_ready_unhealthy_each_once() -> None:
    seen = observe_all(
        [
            status(Phase.STARTING, 10),
            status(Phase.STARTING, 10),
            status(Phase.READY, 10),
            status(Phase.READY, 10),
            status(Phase.UNHEALTHY, 10),
        ]
    )
    assert seen == [
        ("Normal", "Started", "the notebook started (pid 10)"),
        ("Normal", "Ready", "the notebook is ready on port 4000"),
        ("Warning", "Unhealthy", "the notebook fails its health check"),
    ]


def test_an_exit_and_restart_missed_in_between_still_count() -> None:
    # The reconcile after the kill already sees the new process: exit count and pid moved.
    seen = observe_all([status(Phase.READY, 10), status(Phase.STARTING, 11, exits=1)], at="/x/")
    assert seen == [
        ("Normal", "Started", "the notebook started (pid 10)"),
        ("Normal", "Ready", "the notebook is ready at /x/"),
        ("Warning", "BackOff", "the notebook exited: exited with code 1"),
        ("Normal", "Started", "the notebook started (pid 11)"),
    ]


def test_an_oom_kill_comes_with_the_last_lines_then_backoff() -> None:
    how = "killed by signal SIGKILL (9), by the kernel's OOM killer (out of memory)"
    seen = observe_all(
        [status(Phase.READY, 10), status(Phase.BACKOFF, None, exits=1, why="OOMKilled", how=how)]
    )
    assert seen[2:] == [
        ("Warning", "OOMKilled", f"the notebook ran out of memory: {how}; last lines:\na\nb\nc"),
        ("Warning", "BackOff", f"the notebook exited: {how}"),
    ]


def test_a_process_lost_to_the_oom_killer_while_it_runs_on() -> None:
    ready = status(Phase.READY, 10)
    seen = observe_all(
        [
            ready,
            dataclasses.replace(ready, oom_kills=1),
            dataclasses.replace(ready, oom_kills=1),
            dataclasses.replace(ready, oom_kills=3),
        ]
    )
    runs_on = "(out of memory); the notebook runs on. Raise resources.memory if it needs more"
    assert seen[2:] == [
        ("Warning", "OOMKilled", f"the kernel's OOM killer ended one of its processes {runs_on}"),
        ("Warning", "OOMKilled", f"the kernel's OOM killer ended 2 of its processes {runs_on}"),
    ]


def test_a_forgotten_replica_starts_afresh() -> None:
    recorder = Recorded()
    events = ReplicaEvents(recorder)

    async def main() -> None:
        await events.observe(OBJ, "the notebook", status(Phase.READY, 10))
        events.forget(KEY)
        await events.observe(OBJ, "the notebook", status(Phase.READY, 10))

    asyncio.run(main())
    assert [reason for _, reason, _ in recorder.seen] == ["Started", "Ready"] * 2
