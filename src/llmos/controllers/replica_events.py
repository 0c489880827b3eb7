"""ReplicaEvents: the lifecycle Events a workload's replicas earn as their status changes.

The ModelService, Notebook and MLCluster reconcilers hand :meth:`ReplicaEvents.observe`
each replica's current :class:`~llmos.runtime.base.ReplicaStatus` with a label for
people ("replica 0", "the notebook", "the head", "worker cpu-1", the labels their
``Scheduled`` Events use). It compares that with what it saw on the previous call for
the same replica and records:

- ``OOMKilled`` (Warning): a new exit that the runtime judged an out-of-memory kill,
  with the last lines the process wrote; or a process of a replica that runs on, ended
  by the OOM killer (on cgroup v1 it ends one process: a Ray task's worker, say);
- ``BackOff`` (Warning): a new exit, with why (the runtime restarts it after a delay);
- ``Started``: a new process, with its pid;
- ``Ready``: it entered Ready (passes its health check);
- ``Unhealthy`` (Warning): it entered Unhealthy (fails its health check after being ready).

Exits are counted by the status's ``last_termination`` (like Kubernetes' ``lastState``)
and starts by the pid, not by the phases seen in passing: a reconcile that comes after
a replica has already died and restarted still records both. What was seen lives in
memory; a reconciler calls :meth:`forget` when it removes a replica, so a later one with
the same key starts afresh.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from llmos.controllers.events import EventRecorder
from llmos.runtime.base import Phase, ReplicaStatus

__all__ = ["ReplicaEvents"]

OOM_LINES = 5  # last lines of output quoted in an OOMKilled Event


@dataclass(frozen=True)
class _Seen:
    phase: Phase
    pid: int | None
    exits: int  # last_termination.count, 0 before the first exit
    oom_kills: int  # processes it lost to the OOM killer and ran on


class ReplicaEvents:
    """Records each replica's Started, Ready, Unhealthy, BackOff and OOMKilled once."""

    def __init__(self, events: EventRecorder) -> None:
        self.events = events
        self._seen: dict[str, _Seen] = {}  # replica key -> its status when last observed

    async def observe(
        self, obj: dict[str, Any], label: str, status: ReplicaStatus, *, at: str | None = None
    ) -> None:
        """Record on ``obj`` what changed for this replica since the last call.

        ``at`` says where a ready replica is reached (an IP, a URL path); by default its
        port on this machine.
        """
        ended = status.last_termination
        now = _Seen(
            status.phase, status.pid, ended.count if ended is not None else 0, status.oom_kills
        )
        before = self._seen.get(status.key)
        self._seen[status.key] = now
        if before == now:
            return
        if ended is not None and ended.count > (before.exits if before else 0):
            if ended.reason == "OOMKilled":
                lines = "\n".join(ended.last_lines[-OOM_LINES:])
                await self.events.record(
                    obj,
                    "OOMKilled",
                    f"{label} ran out of memory: {ended.message}; last lines:\n{lines}".strip(),
                    "Warning",
                )
            await self.events.record(obj, "BackOff", f"{label} exited: {ended.message}", "Warning")
        lost = status.oom_kills - (before.oom_kills if before else 0)
        if lost > 0:
            which = "one of its processes" if lost == 1 else f"{lost} of its processes"
            await self.events.record(
                obj,
                "OOMKilled",
                f"the kernel's OOM killer ended {which} (out of memory); {label} runs on. "
                "Raise resources.memory if it needs more",
                "Warning",
            )
        if status.pid is not None and (before is None or before.pid != status.pid):
            await self.events.record(obj, "Started", f"{label} started (pid {status.pid})")
        if _entered(Phase.READY, before, now):
            where = f"at {at}" if at else f"on port {status.port}"
            await self.events.record(obj, "Ready", f"{label} is ready {where}")
        if _entered(Phase.UNHEALTHY, before, now):
            await self.events.record(obj, "Unhealthy", f"{label} fails its health check", "Warning")

    def forget(self, key: str) -> None:
        """The replica was removed: its next start is a new one."""
        self._seen.pop(key, None)


def _entered(phase: Phase, before: _Seen | None, now: _Seen) -> bool:
    return now.phase == phase and (before is None or before.phase != phase)
