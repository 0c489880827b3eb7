"""NodeAllocator: reserves this node's CPUs and memory for workload replicas, in its Node.

A replica's ``resources.cpu`` and ``resources.memory`` are what it reserves of
the node, as Kubernetes' scheduler counts a pod's requests in cluster mode: the
replicas placed here never reserve more together than the node has
(``status.allocatable``). One that does not fit is not started; its workload
stays Pending with ``FailedScheduling`` naming the shortfall and who holds
the rest, e.g. "needs 2 CPUs; 0.5 of this node's 2 CPUs is free (held by
default/chat: 1.5 CPUs)". A replica that asks for neither reserves
nothing and always fits, as a Kubernetes pod without requests does.

The record is the store, not memory, as for GPUs (``controllers.gpualloc``):
the Node's ``status.allocations`` lists each replica's reservation, and
``status.allocated`` sums them. A server restart gives the replicas that ran
before their reservations back, so a Pending workload cannot take them
first; :meth:`NodeAllocator.sweep` (at server start) drops those of
workloads that are gone. The node's heartbeat (``controllers.node``) keeps
both fields.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
from typing import Any

from llmos._lib.errors import LLMOSError, Reason
from llmos._lib.quantity import format_bytes, gib
from llmos.controllers.gpualloc import allocation_wanted, released
from llmos.controllers.node import NODES, machine_size
from llmos.gpu.scheduler import Unschedulable
from llmos.runtime.base import Limits
from llmos.store.base import ResourceStore
from llmos.store.edits import edit_status

__all__ = ["NOTHING", "NodeAllocator", "Reservation", "allocated", "shortfall"]

log = logging.getLogger(__name__)
Key = tuple[str, str, str, int]  # kind, namespace, name, replica


@dataclass(frozen=True)
class Reservation:
    """CPUs (cores) and memory (bytes): what a replica reserves, or what a node has."""

    cpu: float = 0.0
    memory: int = 0

    @classmethod
    def of(cls, limits: Limits | None) -> Reservation:
        if limits is None:
            return cls()
        return cls(cpu=limits.cpus or 0.0, memory=limits.memory or 0)

    @classmethod
    def of_node(cls) -> Reservation:
        """This machine, as its Node's ``capacity`` and ``allocatable`` count it."""
        cores, memory = machine_size()
        return cls(cpu=float(cores), memory=memory)

    def over(self, room: Reservation) -> tuple[bool, bool]:
        """Whether this asks for more CPU, and for more memory, than ``room`` holds."""
        return self.cpu > room.cpu + _EPSILON, self.memory > room.memory

    def __bool__(self) -> bool:
        return self.cpu > 0 or self.memory > 0

    def __add__(self, other: Reservation) -> Reservation:
        return Reservation(self.cpu + other.cpu, self.memory + other.memory)

    def __sub__(self, other: Reservation) -> Reservation:
        return Reservation(self.cpu - other.cpu, self.memory - other.memory)


NOTHING = Reservation()


@dataclass(frozen=True)
class Held:
    """One replica's reservation, as the Node records it."""

    key: Key
    reservation: Reservation

    @property
    def workload(self) -> str:
        return f"{self.key[1]}/{self.key[2]}"


def _number(count: float) -> str:
    return f"{count:.3f}".rstrip("0").rstrip(".")


def cpus(count: float) -> str:
    """``1 CPU``, ``0.5 CPU``, ``2 CPUs``, ``1.25 CPUs``."""
    return f"{_number(count)} CPU" + ("s" if count > 1 else "")


def _describe(want: Reservation) -> str:
    parts = []
    if want.cpu > 0:
        parts.append(cpus(want.cpu))
    if want.memory > 0:
        parts.append(f"{gib(want.memory)} of memory")
    return " and ".join(parts)


_EPSILON = 1e-9  # CPUs are sums of decimal fractions: 0.1 + 0.2 fits in 0.3


def shortfall(node: Reservation, held: Sequence[Held], want: Reservation) -> str | None:
    """Why ``want`` does not fit beside ``held`` on a node of ``node``; None if it fits.

    "needs 2 CPUs; 0.5 of this node's 2 CPUs are free (held by default/chat: 1.5 CPUs)".
    """
    free = node - sum((h.reservation for h in held), Reservation())
    short_cpu, short_memory = want.over(free)
    beyond_cpu, beyond_memory = want.over(node)
    reasons = []
    if short_cpu:
        if beyond_cpu:
            reasons.append(f"this node has only {cpus(node.cpu)}")
        else:
            room = f"{_number(max(free.cpu, 0))} of this node's {cpus(node.cpu)} "
            room += "is free" if free.cpu <= 1 else "are free"
            reasons.append(room + _holders(held, lambda r: r.cpu, cpus))
    if short_memory:
        if beyond_memory:
            reasons.append(f"this node has only {gib(node.memory)} of memory")
        else:
            room = f"{gib(max(free.memory, 0))} of this node's {gib(node.memory)} is free"
            reasons.append(room + _holders(held, lambda r: r.memory, gib))
    return f"needs {_describe(want)}; " + "; ".join(reasons) if reasons else None


def _holders(
    held: Sequence[Held], amount: Callable[[Reservation], Any], show: Callable[[Any], str]
) -> str:
    """`` (held by default/chat: 1.5 CPUs, ...)``: the largest three workloads first."""
    by_workload: dict[str, Any] = {}
    for h in held:
        if amount(h.reservation) > 0:
            by_workload[h.workload] = by_workload.get(h.workload, 0) + amount(h.reservation)
    if not by_workload:
        return ""
    largest = sorted(by_workload.items(), key=lambda item: (-item[1], item[0]))
    named = ", ".join(f"{workload}: {show(value)}" for workload, value in largest[:3])
    more = f" and {len(largest) - 3} more" if len(largest) > 3 else ""
    return f" (held by {named}{more})"


def _held(raw: dict[str, Any]) -> Held:
    return Held(
        key=(
            str(raw.get("kind", "")),
            str(raw.get("namespace") or ""),
            str(raw.get("name", "")),
            int(raw.get("replica", 0)),
        ),
        reservation=Reservation(float(raw.get("cpu") or 0), int(raw.get("memoryBytes") or 0)),
    )


def _entry(key: Key, reservation: Reservation) -> dict[str, Any]:
    kind, namespace, name, replica = key
    return {
        "kind": kind,
        "namespace": namespace,
        "name": name,
        "replica": replica,
        "cpu": reservation.cpu,
        "memoryBytes": reservation.memory,
    }


def _sum(allocations: list[dict[str, Any]]) -> Reservation:
    return sum((_held(a).reservation for a in allocations), NOTHING)


def allocated(allocations: list[dict[str, Any]]) -> dict[str, str]:
    """``status.allocated``: the sum of ``status.allocations``, as quantities."""
    total = _sum(allocations)
    millicores = round(total.cpu * 1000)
    cpu = str(millicores // 1000) if millicores % 1000 == 0 else f"{millicores}m"
    return {"cpu": cpu, "memory": format_bytes(total.memory) if total.memory else "0"}


class NodeAllocator:
    """Reservations of this node's CPUs and memory, kept in its Node object."""

    def __init__(
        self,
        store: ResourceStore,
        node: str,
        capacity: Callable[[], Reservation] = Reservation.of_node,
    ) -> None:
        self.store = store
        self.node = node
        self.capacity = capacity
        self._lock = asyncio.Lock()
        # The sum reserved, as last read or written (for /metrics, which cannot wait).
        self.reserved = NOTHING

    async def reserve(self, owner: tuple[str, str, str], replica: int, want: Reservation) -> None:
        """Record the replica's reservation (a new one, or a changed one), or raise
        :class:`~llmos.gpu.scheduler.Unschedulable` naming the shortfall; then the
        replica holds nothing (what it held before is released)."""
        key = (*owner, replica)
        async with self._lock:
            status = await self._status()
            records = [_held(a) for a in status.get("allocations") or []]
            mine = next((h for h in records if h.key == key), None)
            if mine is not None and mine.reservation == want:
                return
            if not want:
                if mine is not None:
                    await self._edit(lambda held: held.key != key)
                return
            others = [h for h in records if h.key != key]
            node = self.capacity()
            reason = shortfall(node, others, want)
            if reason is not None:
                if mine is not None:
                    await self._edit(lambda held: held.key != key)
                raise Unschedulable(reason, exceeds_node=any(want.over(node)))
            await self._edit(lambda held: held.key != key, add=_entry(key, want))

    async def release(
        self,
        owner: tuple[str, str, str],
        keep: int = 0,
        *,
        replicas: Collection[int] | None = None,
    ) -> int:
        """Drop the reservations of the owner's replicas numbered ``keep`` and up (or those
        in ``replicas``); count them."""
        doomed = released(owner, keep, replicas)
        async with self._lock:
            return await self._edit(lambda held: not doomed(held.key))

    async def sweep(self) -> int:
        """Drop the reservations of workloads that are gone or want fewer replicas."""
        async with self._lock:
            status = await self._status()
            stale = {
                held.key
                for held in map(_held, status.get("allocations") or [])
                if not await allocation_wanted(self.store, *held.key)
            }
            dropped = await self._edit(lambda held: held.key not in stale)
        if dropped:
            log.info("released %d CPU and memory reservations of workloads that are gone", dropped)
        return dropped

    async def _status(self) -> dict[str, Any]:
        try:
            node = await self.store.get(NODES, "", self.node)
        except LLMOSError as exc:
            if exc.reason == Reason.NOT_FOUND:
                return {}
            raise
        status: dict[str, Any] = node.get("status") or {}
        self.reserved = _sum(status.get("allocations") or [])
        return status

    async def _edit(self, keep: Callable[[Held], bool], add: dict[str, Any] | None = None) -> int:
        """Keep the allocations ``keep`` says, append ``add``; return how many went."""
        dropped = 0

        def change(status: dict[str, Any]) -> None:
            nonlocal dropped
            before = status.get("allocations") or []
            kept = [a for a in before if keep(_held(a))]
            dropped = len(before) - len(kept)
            if add is None and not dropped:
                return
            status["allocations"] = [*kept, add] if add else kept
            status["allocated"] = allocated(status["allocations"])

        saved = await edit_status(self.store, NODES, "Node", self.node, change)
        if saved is None:
            raise LLMOSError(f"Node {self.node} is not registered yet; try again", Reason.CONFLICT)
        self.reserved = _sum((saved.get("status") or {}).get("allocations") or [])
        return dropped
