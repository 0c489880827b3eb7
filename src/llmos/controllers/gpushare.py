"""GPUShareWatch: warns when a replica uses more of a shared GPU than its share.

A replica placed with ``resources.gpuMemory`` (or a fraction) holds a share of a
GPU that other workloads share too (``ReplicaSpec.gpu_shares``). Its engine is held to
the share by its own arguments (vLLM's ``--gpu-memory-utilization``, llama.cpp's
offloaded layers, transformers' ``max_memory``), but nothing in the driver enforces
it: an ``engineArgs`` that overrides the limit, a notebook's code, or an estimate that
was short lets it take more, and then a neighbour's next allocation fails.

Every ``interval`` seconds the watch sums, per GPU, the memory NVML reports for each
such replica's process tree (the same reading as ``llmos_workload_gpu_memory_bytes``)
and records a ``GPUMemoryOverShare`` Warning Event on the workload when the sum passes
its share by more than :func:`tolerance` (a CUDA context alone is a few hundred MiB).
It records once per episode: again only after the replica went back under its share,
or after it restarted.

It runs where the local runtime runs its replicas (embedded mode); in cluster mode
Kubernetes' device plugin owns the GPUs.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable
from typing import Any, Protocol

from llmos._lib.errors import LLMOSError, Reason
from llmos._lib.quantity import gib
from llmos._lib.tasks import Periodic
from llmos.controllers.events import EventRecorder
from llmos.controllers.gpudevices import GPUDevicePublisher
from llmos.resources.registry import KIND_REGISTRY
from llmos.runtime.base import ReplicaSpec, ReplicaStatus
from llmos.runtime.proctable import process_table
from llmos.store.base import ResourceStore

__all__ = ["OVER_SHARE", "GPUShareWatch", "tolerance"]

log = logging.getLogger(__name__)
OVER_SHARE = "GPUMemoryOverShare"
_SLACK_BYTES = 512 * 2**20


def tolerance(share: int) -> int:
    """How far past its share a replica may go unremarked: 10%, at least 512 MiB."""
    return max(share // 10, _SLACK_BYTES)


class Replicas(Protocol):
    """What the watch asks of the runtime."""

    def keys(self, prefix: str = "") -> list[str]: ...

    def status(self, key: str) -> ReplicaStatus | None: ...

    def spec(self, key: str) -> ReplicaSpec | None: ...


class GPUShareWatch:
    """Compares shared-GPU replicas' memory with their shares; see the module's doc."""

    def __init__(
        self,
        store: ResourceStore,
        runtime: Replicas,
        gpus: GPUDevicePublisher,
        events: EventRecorder,
        interval: float = 30.0,
    ) -> None:
        self.store = store
        self.runtime = runtime
        self.gpus = gpus
        self.events = events
        self._over: set[tuple[str, int, int]] = set()  # (replica key, GPU index, pid)
        self._rounds = Periodic(self.check, interval, "the GPU share watch", log=log)

    async def start(self) -> None:
        await self._rounds.start()

    async def stop(self) -> None:
        await self._rounds.stop()

    async def check(self) -> list[str]:
        """One pass over the latest GPU reading; returns the Events' messages it recorded."""
        on_gpus = self.gpus.snapshot.memory_by_pid()
        sharing = list(self._sharing())
        if not sharing:
            self._over.clear()
            return []
        table = await asyncio.to_thread(process_table)
        over: set[tuple[str, int, int]] = set()
        recorded = []
        for spec, pid in sharing:
            tree = table.tree(pid)
            for index, share in spec.gpu_shares:
                used = sum(b for p in tree for i, b in on_gpus.get(p, ()) if i == index)
                if used <= share + tolerance(share):
                    continue
                seen = (spec.key, index, pid)
                over.add(seen)
                if seen in self._over:
                    continue
                message = (
                    f"{spec.label or spec.key} uses {gib(used)} of GPU {index}, over its share of "
                    f"{gib(share)}: the workloads that share the GPU may run out of memory. "
                    "Ask for more (resources.gpuMemory), or hold the engine to less"
                )
                try:
                    said = await self._record(spec, message)
                except LLMOSError as exc:  # the next round tries again; the others go on
                    log.warning("could not record %s's %s: %s", spec.key, OVER_SHARE, exc)
                    said = False
                if said:
                    recorded.append(message)
                else:
                    over.discard(seen)  # its workload is gone (or the store failed)
        self._over = over
        return recorded

    def _sharing(self) -> Iterable[tuple[ReplicaSpec, int]]:
        """Each running replica that holds part of a GPU, with its pid."""
        for key in self.runtime.keys(""):
            spec, status = self.runtime.spec(key), self.runtime.status(key)
            if spec is not None and spec.gpu_shares and status is not None and status.pid:
                yield spec, status.pid

    async def _record(self, spec: ReplicaSpec, message: str) -> bool:
        kind, namespace, name = spec.owner
        info = KIND_REGISTRY.by_kind(kind)
        if info is None:
            return False
        try:
            obj: dict[str, Any] = await self.store.get(info.resource, namespace, name)
        except LLMOSError as exc:
            if exc.reason != Reason.NOT_FOUND:
                raise
            return False
        log.warning("%s %s/%s: %s", kind, namespace, name, message)
        await self.events.record(obj, OVER_SHARE, message, "Warning")
        return True
