"""ReplicaPlacer: puts a workload's replicas on GPUs and the node's CPUs and memory.

The ModelService, Notebook and MLCluster controllers read a request from a
``spec.resources`` (``gpu``, ``gpuMemory``, ``gpuPlacement``) and hand
:meth:`ReplicaPlacer.place` their object, its status and the replicas they
want to run (:class:`Member`: the number recorded in GPUDevice allocations,
and a label for people). Each replica is placed in turn through the
:class:`~llmos.controllers.gpualloc.GPUAllocator`, stopping at the first that
does not fit. A replica first reserves its ``resources.cpu`` and ``memory`` of
the node (:class:`~llmos.controllers.nodealloc.NodeAllocator`), then its GPUs.
What happened goes into the object's ``Scheduled`` condition and its Events:

- ``Scheduled``: a replica newly placed ("replica 0 scheduled on GPU 2 (1 GiB
  of 22.5 GiB)"), or put on the CPU when no GPU is asked for;
- ``FailedScheduling`` (Warning): the shortfall, e.g. "needs 1 GPU with 40 GiB
  free; largest free is 24 GiB on GPU 1", or "needs 2 CPUs; 0.5 of 2 CPUs are
  free on this node (held by ...)"; the controller keeps the workload Pending
  and retries;
- ``Evicted`` (Warning): a replica's GPU turned Unhealthy, disappeared, or its
  allocation was removed. The replica is placed afresh (its process restarts
  on the new GPUs) or, when nothing fits, is not run.

The placer remembers the GPUs it gave each replica, in memory: replicas do not
outlive the server (the runtime restarts them cleanly), and after a restart the
allocations in the store give them the same GPUs back. :func:`owners_on` maps a
GPUDevice that turned Unhealthy or went away to the workloads it holds, so
their controllers react before the next resync.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from llmos.controllers.events import EventRecorder
from llmos.controllers.gpualloc import GPUAllocator, GPUPlacement, released
from llmos.controllers.loop import ObjectKey, Related
from llmos.controllers.nodealloc import NOTHING, NodeAllocator, Reservation
from llmos.gpu.request import GPURequest, Placement
from llmos.gpu.scheduler import Unschedulable, too_big
from llmos.resources.meta import set_condition
from llmos.runtime.base import Limits
from llmos.store.base import WatchEvent

__all__ = ["CPU_ONLY", "Member", "ReplicaPlacer", "Scheduling", "owners_on", "reservation"]

# The environment of a replica that asked for no GPU: it sees none.
CPU_ONLY = {"CUDA_VISIBLE_DEVICES": ""}
Owner = tuple[str, str, str]


@dataclass(frozen=True)
class Member:
    """One replica to place: its number in GPUDevice and Node allocations, how people call
    it, the GPUs it asks for (None: no GPU, it runs on the CPU), and the CPUs and memory."""

    number: int
    label: str
    request: GPURequest | None = None
    policy: Placement = "binpack"
    reserves: Reservation = NOTHING


def reservation(resources: dict[str, Any] | None) -> Reservation:
    """``resources.cpu`` and ``memory``: what a :class:`Member` reserves of the node."""
    return Reservation.of(Limits.of(resources))


@dataclass(frozen=True)
class Scheduling:
    """The placement of each member, in order, up to the first that did not fit."""

    placed: tuple[GPUPlacement | None, ...]  # None: runs on the CPU
    shortfall: str | None = None
    exceeds_node: bool = False  # the shortfall: not even an empty node could take it

    @property
    def reason(self) -> str:
        """The Ready condition's reason for a shortfall: ``ExceedsNode`` when no waiting
        helps (the CLI stops waiting on it), else ``FailedScheduling``."""
        return "ExceedsNode" if self.exceeds_node else "FailedScheduling"

    def env(self, position: int) -> dict[str, str]:
        """The GPU environment of the member at ``position`` (which must be placed)."""
        placed = self.placed[position]
        return CPU_ONLY if placed is None else placed.env()


def owner_of(obj: dict[str, Any]) -> Owner:
    meta = obj["metadata"]
    return (str(obj.get("kind", "")), str(meta.get("namespace") or ""), str(meta["name"]))


class ReplicaPlacer:
    """Places replicas through the allocator and records Scheduled, FailedScheduling, Evicted."""

    def __init__(
        self,
        gpus: GPUAllocator | None,
        events: EventRecorder,
        node: NodeAllocator | None = None,
    ) -> None:
        self.gpus = gpus
        self.events = events
        self.node = node
        # (kind, namespace, name, number) -> the request and placement given (None: the CPU).
        self._given: dict[tuple[str, str, str, int], tuple[GPURequest | None, GPUPlacement | None]]
        self._given = {}

    async def place(
        self, obj: dict[str, Any], status: dict[str, Any], members: Sequence[Member]
    ) -> Scheduling:
        """Place ``members`` in order; on a shortfall, say why (condition, Warning Event)."""
        owner = owner_of(obj)
        placements: list[GPUPlacement | None] = []
        for member in members:
            key = (*owner, member.number)
            request = member.request
            try:
                if self.node is not None:
                    await self.node.reserve(owner, member.number, member.reserves)
            except Unschedulable as exc:  # it runs nowhere: it holds no GPU either
                self._given.pop(key, None)
                if self.gpus is not None:
                    await self.gpus.release(owner, replicas=[member.number])
                return await self._unschedulable(obj, status, placements, exc)
            if request is None:
                previous = self._given.get(key)
                if previous is None or previous[1] is not None:
                    if self.gpus is not None:  # it may have held GPUs before
                        await self.gpus.release(owner, replicas=[member.number])
                    await self.events.record(
                        obj, "Scheduled", f"{member.label} scheduled on the CPU (no GPU requested)"
                    )
                self._given[key] = (None, None)
                placements.append(None)
                continue
            await self._evict_if_displaced(obj, member, request)
            try:
                if self.gpus is None:
                    raise Unschedulable(too_big((), request), exceeds_node=True)
                placed = await self.gpus.place(owner, member.number, request, member.policy)
            except Unschedulable as exc:
                if self.node is not None:  # a replica not run holds nothing
                    await self.node.release(owner, replicas=[member.number])
                return await self._unschedulable(obj, status, placements, exc)
            if placed.new:
                await self.events.record(
                    obj, "Scheduled", f"{member.label} scheduled on {placed.describe()}"
                )
            self._given[key] = (request, placed)
            placements.append(placed)
        if not any(placements):
            set_condition(status, "Scheduled", True, "NoGPURequested", "runs on the CPU")
        else:
            where = "; ".join(
                f"{m.label} on {p.describe() if p else 'the CPU'}"
                for m, p in zip(members, placements, strict=True)
            )
            set_condition(status, "Scheduled", True, "Scheduled", where)
        return Scheduling(tuple(placements))

    async def _unschedulable(
        self,
        obj: dict[str, Any],
        status: dict[str, Any],
        placements: list[GPUPlacement | None],
        refusal: Unschedulable,
    ) -> Scheduling:
        scheduling = Scheduling(tuple(placements), str(refusal), refusal.exceeds_node)
        set_condition(status, "Scheduled", False, scheduling.reason, str(refusal))
        await self.events.record(obj, "FailedScheduling", str(refusal), "Warning")
        return scheduling

    async def release(
        self, owner: Owner, keep: int = 0, *, replicas: Sequence[int] | None = None
    ) -> None:
        """Forget and free the owner's replicas numbered ``keep`` and up (or ``replicas``)."""
        doomed = released(owner, keep, replicas)
        for key in [key for key in self._given if doomed(key)]:
            del self._given[key]
        if self.gpus is not None:
            await self.gpus.release(owner, keep, replicas=replicas)
        if self.node is not None:
            await self.node.release(owner, keep, replicas=replicas)

    async def _evict_if_displaced(
        self, obj: dict[str, Any], member: Member, request: GPURequest
    ) -> None:
        owner = owner_of(obj)
        asked, given = self._given.get((*owner, member.number), (None, None))
        if self.gpus is None or given is None or asked != request:
            return  # nothing given here yet, or a changed request: placed afresh anyway
        reason = await self.gpus.displaced(owner, member.number, given)
        if reason is None:
            return
        del self._given[(*owner, member.number)]  # its CPUs and memory stay reserved
        await self.gpus.release(owner, replicas=[member.number])
        await self.events.record(
            obj, "Evicted", f"{member.label} evicted from {given.describe()}: {reason}", "Warning"
        )


def owners_on(kind: str) -> Related:
    """Map a GPUDevice that turned Unhealthy or was deleted to the ``kind`` objects it holds."""

    async def mapper(event: WatchEvent) -> list[ObjectKey]:
        device = event.object
        status = device.get("status") or {}
        if event.type != "DELETED" and status.get("health") != "Unhealthy":
            return []
        return [
            ObjectKey(str(a.get("namespace") or ""), str(a["name"]))
            for a in status.get("allocations") or []
            if a.get("kind") == kind
        ]

    return mapper
