"""Choose GPUs for one replica: filters, then scores, then a pick; or say what is missing.

Pure: it is handed every GPU of the node with what is already allocated on
it (:class:`GPUState`) and a :class:`~llmos.gpu.request.GPURequest`, and
returns the chosen GPUs or raises :class:`Unschedulable`. The store-backed
allocator (``llmos.controllers.gpualloc``) calls it and records the result.

1. **Filters** drop a GPU, each with the reason it gives: unhealthy, MIG mode
   on (MIG instances are not scheduled), cordoned (``spec.unschedulable``),
   held whole by another workload, in use at all (for a whole-GPU request),
   or too little memory free for the share.
2. **Scores** order what is left. ``binpack`` (the default) takes the GPU
   that will have the least memory free afterwards, so shares pile onto
   partly used GPUs and whole GPUs stay free for what needs them; ``spread``
   takes the one with the most free, for workloads that should not compete.
   Ties go to the lower index.
3. **Selection** takes the first ``count``. Too few means over-commit, which
   is refused with a message naming the shortfall, e.g. "needs 1 GPU with
   40 GiB free; largest free is 24 GiB on GPU 1".
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from llmos._lib.errors import Reason
from llmos._lib.quantity import gib
from llmos.gpu.errors import GPUError
from llmos.gpu.request import GPURequest, Placement

__all__ = ["Allocation", "Assignment", "GPUState", "Unschedulable", "schedule", "too_big"]


@dataclass(frozen=True)
class Allocation:
    """Memory of one GPU held by one replica of a workload."""

    kind: str
    namespace: str
    name: str
    replica: int
    memory_bytes: int
    whole: bool = False

    @property
    def owner(self) -> tuple[str, str, str]:
        return self.kind, self.namespace, self.name

    def describe(self) -> str:
        return f"{self.namespace}/{self.name}" if self.namespace else self.name


@dataclass(frozen=True)
class GPUState:
    """One GPU as the scheduler sees it: size, whether it takes work, and what it holds."""

    index: int
    memory_total_bytes: int
    allocations: tuple[Allocation, ...] = ()
    healthy: bool = True
    health_reason: str = ""
    mig_enabled: bool = False
    cordoned: bool = False
    device: str = ""  # the GPUDevice object's name
    name: str = ""  # the product, e.g. "NVIDIA L4"

    @property
    def allocated_bytes(self) -> int:
        return sum(a.memory_bytes for a in self.allocations)

    @property
    def free_bytes(self) -> int:
        if any(a.whole for a in self.allocations):
            return 0
        return max(0, self.memory_total_bytes - self.allocated_bytes)


@dataclass(frozen=True)
class Assignment:
    """One GPU given to a replica, and how much of it."""

    index: int
    device: str
    memory_bytes: int
    memory_total_bytes: int
    whole: bool


class Unschedulable(GPUError):
    """No set of GPUs can take the request now; the message names the shortfall.

    ``exceeds_node``: not even an empty node could take it (more GPUs than the
    node has, a share larger than its largest GPU, more CPUs or memory than it
    has), so no amount of waiting will.
    """

    def __init__(self, message: str, *, exceeds_node: bool = False) -> None:
        super().__init__(message, Reason.SERVICE_UNAVAILABLE)
        self.exceeds_node = exceeds_node


# A filter answers None when the GPU may take the request, else why not ("in use by a/b").
Filter = Callable[[GPUState, GPURequest], str | None]


def _usable(gpu: GPUState, request: GPURequest) -> str | None:
    if not gpu.healthy:
        return f"Unhealthy: {gpu.health_reason}" if gpu.health_reason else "Unhealthy"
    if gpu.mig_enabled:
        return "in MIG mode (MIG instances are not scheduled)"
    if gpu.cordoned:
        return "cordoned"
    return None


def _not_held_whole(gpu: GPUState, request: GPURequest) -> str | None:
    holder = next((a for a in gpu.allocations if a.whole), None)
    return f"held whole by {holder.describe()}" if holder else None


def _idle_for_whole(gpu: GPUState, request: GPURequest) -> str | None:
    if request.whole and gpu.allocations:
        users = ", ".join(sorted({a.describe() for a in gpu.allocations}))
        return f"in use by {users}"
    return None


def _room_for_share(gpu: GPUState, request: GPURequest) -> str | None:
    if not request.whole and gpu.free_bytes < request.need(gpu.memory_total_bytes):
        return f"{gib(gpu.free_bytes)} free"
    return None


FILTERS: tuple[Filter, ...] = (_usable, _not_held_whole, _idle_for_whole, _room_for_share)


def schedule(
    gpus: Sequence[GPUState], request: GPURequest, policy: Placement = "binpack"
) -> tuple[Assignment, ...]:
    """The GPUs for one replica of ``request``, best first; raise Unschedulable if too few fit."""
    rejected: dict[int, str] = {}
    fits: list[GPUState] = []
    for gpu in gpus:
        reason = next((r for f in FILTERS if (r := f(gpu, request)) is not None), None)
        if reason is None:
            fits.append(gpu)
        else:
            rejected[gpu.index] = reason
    if len(fits) < request.count:
        big_enough = [g for g in gpus if request.need(g.memory_total_bytes) <= g.memory_total_bytes]
        if len(big_enough) < request.count:
            raise Unschedulable(too_big(gpus, request), exceeds_node=True)
        raise Unschedulable(_shortfall(gpus, request, fits, rejected))

    def score(gpu: GPUState) -> tuple[int, int]:
        left = gpu.free_bytes - request.need(gpu.memory_total_bytes)
        return (left if policy == "binpack" else -left, gpu.index)

    chosen = sorted(fits, key=score)[: request.count]
    return tuple(
        Assignment(
            index=gpu.index,
            device=gpu.device,
            memory_bytes=request.need(gpu.memory_total_bytes),
            memory_total_bytes=gpu.memory_total_bytes,
            whole=request.whole,
        )
        for gpu in sorted(chosen, key=lambda g: g.index)
    )


def too_big(gpus: Sequence[GPUState], request: GPURequest) -> str:
    """Why an empty node with ``gpus`` (none at all, say) could not take ``request`` either."""
    wanted = f"needs {request.describe()}"
    if not gpus:
        return f"{wanted}; this node has no GPU"
    if request.count > len(gpus):
        count = f"{len(gpus)} GPU{'s' if len(gpus) != 1 else ''}"
        return f"{wanted}; this node has only {count}"
    largest = max(gpus, key=lambda g: (g.memory_total_bytes, -g.index))
    return (
        f"{wanted}; the largest GPU on this node has {gib(largest.memory_total_bytes)} "
        f"of memory (GPU {largest.index})"
    )


def _shortfall(
    gpus: Sequence[GPUState],
    request: GPURequest,
    fits: list[GPUState],
    rejected: dict[int, str],
) -> str:
    wanted = f"needs {request.describe()}"
    usable = [g for g in gpus if _usable(g, request) is None]
    unusable = "; ".join(
        f"GPU {g.index} is {rejected[g.index]}" for g in gpus if _usable(g, request) is not None
    )
    if not usable:
        return f"{wanted}; no GPU can take work: {unusable}"
    tail = f"; {unusable}" if unusable else ""
    names = ", ".join(f"GPU {g.index}" for g in fits)
    if request.whole:
        if fits:
            found = f"only {len(fits)} {'is' if len(fits) == 1 else 'are'} free ({names})"
        else:
            found = "none is free: " + "; ".join(
                f"GPU {g.index} is {rejected[g.index]}" for g in usable
            )
        return f"{wanted}; {found}{tail}"
    fitting = {g.index for g in fits}
    short = [g for g in usable if g.index not in fitting]
    if not short:  # every GPU that can take work has room: there are too few of them
        count = f"{len(fits)} GPU{'s' if len(fits) != 1 else ''}"
        return f"{wanted}; this node has only {count} that can take work ({names}){tail}"
    largest = max(short, key=lambda g: (g.free_bytes, -g.index))
    free = gib(largest.free_bytes)
    if request.fraction is not None:
        free = f"{largest.free_bytes / largest.memory_total_bytes:.0%} ({free})"
    where = f"{free} on GPU {largest.index}"
    if largest.free_bytes == 0 and rejected[largest.index].startswith("held whole"):
        where += f" ({rejected[largest.index]})"
    if fits:
        verb = "has" if len(fits) == 1 else "have"
        found = f"only {names} {verb} that; largest free elsewhere is {where}"
    else:
        found = f"largest free is {where}"
    return f"{wanted}; {found}{tail}"
