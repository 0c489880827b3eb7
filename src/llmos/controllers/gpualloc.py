"""GPUAllocator: places workload replicas on this node's GPUs and records it in GPUDevices.

The record is the store, not memory: each GPUDevice's ``status.allocations``
lists who holds it (workload kind, namespace, name, replica) and how much
(whole, or ``memoryBytes``). :meth:`GPUAllocator.place` first looks for the
replica's own record and reuses it when it still matches the request, so a
server restart, a resync or a crashed replica gets the same GPUs back; only
a new replica, or a changed request, is scheduled afresh
(``llmos.gpu.scheduler``). :meth:`~GPUAllocator.release` drops a workload's
records when its replicas stop, and :meth:`~GPUAllocator.sweep` (at server
start) drops those of workloads that no longer exist or want fewer replicas.
:meth:`~GPUAllocator.displaced` says why a running replica's GPUs can no
longer hold it (a GPU turned Unhealthy or went away, or its record was
removed), for the eviction in ``llmos.controllers.gpuplacement``.
One lock serialises the whole read-schedule-write, so two workloads never
take the same free memory.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Collection
from dataclasses import dataclass
from typing import Any

from llmos._lib.errors import LLMOSError, Reason
from llmos._lib.quantity import gib
from llmos.controllers.gpudevices import edit_status, node_devices
from llmos.gpu.request import GPURequest, Placement
from llmos.gpu.scheduler import Allocation, Assignment, GPUState, schedule
from llmos.store.base import ResourceStore

__all__ = ["GPUAllocator", "GPUPlacement", "allocation_wanted", "released"]

log = logging.getLogger(__name__)
# Where the sweep looks up the owners it knows; others are left alone.
_OWNERS = {
    "ModelService": "modelservices.ml.llmos.ai",
    "Notebook": "notebooks.ml.llmos.ai",
    "MLCluster": "mlclusters.ml.llmos.ai",
}


@dataclass(frozen=True)
class GPUPlacement:
    """The GPUs one replica holds."""

    assignments: tuple[Assignment, ...]
    new: bool = False  # placed just now (else found in the store)

    @property
    def gpus(self) -> tuple[int, ...]:
        return tuple(a.index for a in self.assignments)

    def env(self) -> dict[str, str]:
        """What a process needs to see these GPUs, as NVML numbers them."""
        return {
            "CUDA_VISIBLE_DEVICES": ",".join(str(g) for g in self.gpus),
            # NVML counts in PCI bus order; CUDA counts fastest first unless told otherwise.
            "CUDA_DEVICE_ORDER": "PCI_BUS_ID",
        }

    @property
    def whole(self) -> bool:
        return all(a.whole for a in self.assignments)

    @property
    def memory_bytes(self) -> int:
        """The share on each GPU (the smallest, should they differ)."""
        return min(a.memory_bytes for a in self.assignments)

    @property
    def shares(self) -> tuple[tuple[int, int], ...]:
        """(GPU index, bytes) of each GPU held in part; none for whole GPUs."""
        return tuple((a.index, a.memory_bytes) for a in self.assignments if not a.whole)

    @property
    def fraction(self) -> float | None:
        """Share of each GPU's memory for the engine; None for whole GPUs."""
        if self.whole:
            return None
        return min(a.memory_bytes / a.memory_total_bytes for a in self.assignments)

    def describe(self) -> str:
        """``GPU 1 (20 GiB of 24 GiB)``, ``GPUs 0, 1 (whole)``."""
        names = ", ".join(str(i) for i in self.gpus)
        label = f"GPU {names}" if len(self.gpus) == 1 else f"GPUs {names}"
        if self.whole:
            return f"{label} (whole)"
        first = self.assignments[0]
        return f"{label} ({gib(first.memory_bytes)} of {gib(first.memory_total_bytes)})"


def _allocation(raw: dict[str, Any]) -> Allocation:
    return Allocation(
        kind=str(raw.get("kind", "")),
        namespace=str(raw.get("namespace") or ""),
        name=str(raw.get("name", "")),
        replica=int(raw.get("replica", 0)),
        memory_bytes=int(raw.get("memoryBytes", 0)),
        whole=bool(raw.get("whole", False)),
    )


def _state(device: dict[str, Any], without: tuple[str, str, str, int] | None) -> GPUState:
    status = device.get("status") or {}
    allocations = tuple(
        a
        for a in (_allocation(raw) for raw in status.get("allocations") or [])
        if (*a.owner, a.replica) != without
    )
    return GPUState(
        index=int(status.get("index", 0)),
        memory_total_bytes=int(status.get("memoryTotalBytes", 0)),
        allocations=allocations,
        healthy=status.get("health") == "Healthy",
        health_reason="; ".join(status.get("healthReasons") or []) or str(status.get("health")),
        mig_enabled=status.get("migMode") == "Enabled",
        cordoned=bool((device.get("spec") or {}).get("unschedulable")),
        device=device["metadata"]["name"],
        name=str(status.get("product", "")),
    )


class GPUAllocator:
    """Allocations of this node's GPUs, kept in the GPUDevice objects."""

    def __init__(self, store: ResourceStore, node: str) -> None:
        self.store = store
        self.node = node
        self._lock = asyncio.Lock()

    async def place(
        self,
        owner: tuple[str, str, str],
        replica: int,
        request: GPURequest,
        policy: Placement = "binpack",
    ) -> GPUPlacement:
        """The replica's GPUs: its recorded ones if they still fit the request, else new ones.

        Raises :class:`~llmos.gpu.scheduler.Unschedulable` naming the shortfall; then
        nothing is written (a previous placement stays until released).
        """
        key = (*owner, replica)
        async with self._lock:
            devices = await node_devices(self.store, self.node)
            held = self._held(devices, key, request)
            if held is not None:
                return GPUPlacement(held)
            chosen = schedule([_state(d, without=key) for d in devices], request, policy)
            picked = {a.device: a for a in chosen}
            for device in devices:
                name = device["metadata"]["name"]
                mine = [
                    a
                    for a in (device.get("status") or {}).get("allocations") or []
                    if (*_allocation(a).owner, _allocation(a).replica) == key
                ]
                if not mine and name not in picked:
                    continue
                entry = None
                if name in picked:
                    entry = {
                        "kind": owner[0],
                        "namespace": owner[1],
                        "name": owner[2],
                        "replica": replica,
                        "memoryBytes": picked[name].memory_bytes,
                        "whole": picked[name].whole,
                    }
                await edit_status(self.store, name, _replace(key, entry))
            return GPUPlacement(chosen, new=True)

    async def release(
        self,
        owner: tuple[str, str, str],
        keep: int = 0,
        *,
        replicas: Collection[int] | None = None,
    ) -> int:
        """Drop the allocations of the owner's replicas numbered ``keep`` and up (or those
        in ``replicas``); count them."""
        doomed = released(owner, keep, replicas)
        async with self._lock:
            return await self._release(lambda a: doomed((*a.owner, a.replica)))

    async def displaced(
        self, owner: tuple[str, str, str], replica: int, placement: GPUPlacement
    ) -> str | None:
        """Why the GPUs of ``placement`` no longer hold the replica; None while they do."""
        key = (*owner, replica)
        by_name = {d["metadata"]["name"]: d for d in await node_devices(self.store, self.node)}
        for assignment in placement.assignments:
            device = by_name.get(assignment.device)
            if device is None:
                return f"GPU {assignment.index} is gone"
            state = _state(device, without=None)
            if (device.get("status") or {}).get("health") == "Unhealthy":
                return f"GPU {assignment.index} is Unhealthy: {state.health_reason}"
            if not any((*a.owner, a.replica) == key for a in state.allocations):
                return f"its allocation on GPU {assignment.index} was removed"
        return None

    async def sweep(self) -> int:
        """Drop allocations whose workload is gone or wants fewer replicas (server start)."""
        stale: set[tuple[str, str, str, int]] = set()
        async with self._lock:
            for device in await node_devices(self.store, self.node):
                for raw in (device.get("status") or {}).get("allocations") or []:
                    allocation = _allocation(raw)
                    if not await allocation_wanted(
                        self.store, *allocation.owner, allocation.replica
                    ):
                        stale.add((*allocation.owner, allocation.replica))
            dropped = await self._release(lambda a: (*a.owner, a.replica) in stale)
        if dropped:
            log.info("released %d GPU allocations of workloads that are gone", dropped)
        return dropped

    def _held(
        self, devices: list[dict[str, Any]], key: tuple[str, str, str, int], request: GPURequest
    ) -> tuple[Assignment, ...] | None:
        found = []
        for device in devices:
            state = _state(device, without=None)
            for allocation in state.allocations:
                if (*allocation.owner, allocation.replica) != key:
                    continue
                if allocation.whole != request.whole or (
                    not request.whole
                    and allocation.memory_bytes != request.need(state.memory_total_bytes)
                ):
                    return None  # the request changed: place it again
                found.append(
                    Assignment(
                        index=state.index,
                        device=state.device,
                        memory_bytes=allocation.memory_bytes,
                        memory_total_bytes=state.memory_total_bytes,
                        whole=allocation.whole,
                    )
                )
        return tuple(found) if len(found) == request.count else None

    async def _release(self, doomed: Callable[[Allocation], bool]) -> int:
        dropped = 0
        for device in await node_devices(self.store, self.node):
            allocations = (device.get("status") or {}).get("allocations") or []
            if not any(doomed(_allocation(a)) for a in allocations):
                continue
            dropped += sum(1 for a in allocations if doomed(_allocation(a)))

            def keep_others(status: dict[str, Any]) -> None:
                status["allocations"] = [
                    a for a in status.get("allocations") or [] if not doomed(_allocation(a))
                ]

            await edit_status(self.store, device["metadata"]["name"], keep_others)
        return dropped


def released(
    owner: tuple[str, str, str], keep: int = 0, replicas: Collection[int] | None = None
) -> Callable[[tuple[str, str, str, int]], bool]:
    """Whether a replica's (kind, namespace, name, number) is one a release of the owner's
    replicas numbered ``keep`` and up (or those in ``replicas``) drops."""

    def doomed(key: tuple[str, str, str, int]) -> bool:
        if key[:3] != owner:
            return False
        return key[3] in replicas if replicas is not None else key[3] >= keep

    return doomed


async def allocation_wanted(
    store: ResourceStore, kind: str, namespace: str, name: str, replica: int
) -> bool:
    """Whether the workload still wants the replica that holds an allocation (for sweeps)."""
    resource = _OWNERS.get(kind)
    if resource is None:
        return True
    try:
        owner = await store.get(resource, namespace, name)
    except LLMOSError as exc:
        if exc.reason == Reason.NOT_FOUND:
            return False
        raise
    spec = owner.get("spec") or {}
    if kind == "Notebook":
        return not spec.get("stopped")
    if kind == "MLCluster":
        return True  # its controller releases the nodes it no longer runs
    return not spec.get("endpoint") and replica < int(spec.get("replicas", 1))


def _replace(
    key: tuple[str, str, str, int], entry: dict[str, Any] | None
) -> Callable[[dict[str, Any]], None]:
    def change(status: dict[str, Any]) -> None:
        kept = [
            a
            for a in status.get("allocations") or []
            if (*_allocation(a).owner, _allocation(a).replica) != key
        ]
        status["allocations"] = [*kept, entry] if entry else kept

    return change
