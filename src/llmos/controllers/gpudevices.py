"""GPUDevicePublisher: this node's GPUs as GPUDevice objects, and its GPU capacity.

The node agent calls :meth:`GPUDevicePublisher.publish` at every heartbeat:
it reads the :class:`~llmos.gpu.source.GPUSource` (NVML, or a recorded
fixture with ``--gpu-fixture``) in a thread, creates or updates one
GPUDevice per GPU (``{node}-gpu{index}``, labelled ``llmos.ai/node``), and
deletes those of GPUs that are gone. It writes the inventory, health and
usage fields of ``status`` and never ``allocations``, which belong to the
allocator (``llmos.controllers.gpualloc``); both read-modify-write with the
resourceVersion and retry on a conflict, so neither loses the other's change.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

from llmos._lib import timefmt
from llmos._lib.errors import LLMOSError, Reason
from llmos._lib.quantity import format_bytes
from llmos.gpu.inventory import GPU, GPUSnapshot
from llmos.gpu.source import GPUSource
from llmos.store.base import ResourceStore
from llmos.store.edits import edit_status as edit_object_status
from llmos.store.selector import parse_selector

__all__ = [
    "GPUDEVICES",
    "GPU_MEMORY",
    "NODE_LABEL",
    "NVIDIA_GPU",
    "GPUDevicePublisher",
    "device_name",
    "edit_status",
    "node_devices",
]

log = logging.getLogger(__name__)
GPUDEVICES = "gpudevices.node.llmos.ai"
NODE_LABEL = "llmos.ai/node"
NVIDIA_GPU = "nvidia.com/gpu"
GPU_MEMORY = "llmos.ai/gpu-memory"


def device_name(node: str, index: int) -> str:
    return f"{node}-gpu{index}"


async def node_devices(store: ResourceStore, node: str) -> list[dict[str, Any]]:
    """The GPUDevices of ``node``, by index."""
    page = await store.list(GPUDEVICES, "", selector=parse_selector(f"{NODE_LABEL}={node}"))
    return sorted(page.items, key=lambda d: int((d.get("status") or {}).get("index", 0)))


async def edit_status(
    store: ResourceStore, name: str, change: Callable[[dict[str, Any]], None]
) -> dict[str, Any] | None:
    """Apply ``change`` to a GPUDevice's status and save it, re-reading on a conflict.

    Returns the saved object (or the unchanged one), None if the device is gone.
    """
    return await edit_object_status(store, GPUDEVICES, "GPUDevice", name, change)


def _inventory(gpu: GPU, snapshot: GPUSnapshot) -> dict[str, Any]:
    info, reading = gpu.info, gpu.reading
    major, minor = info.compute_capability
    usage = reading.to_dict()
    usage.pop("uuid")
    usage.pop("processes", None)  # pids are for metrics, not for the API
    return {
        "index": info.index,
        "uuid": info.uuid,
        "product": info.name,
        "pciBusId": info.pci_bus_id,
        "memoryTotalBytes": info.memory_total_bytes,
        "computeCapability": f"{major}.{minor}",
        "driverVersion": snapshot.driver_version,
        "cudaVersion": snapshot.cuda_version,
        "migMode": info.mig_mode,
        "eccEnabled": info.ecc_enabled,
        "powerLimitWatts": info.power_limit_watts,
        "health": gpu.health.status,
        "healthReasons": list(gpu.health.reasons),
        "usage": usage,
        "lastReadingTime": timefmt.rfc3339(),
    }


class GPUDevicePublisher:
    """Keeps this node's GPUDevice objects in step with its GPU source."""

    def __init__(self, store: ResourceStore, node: str, source: GPUSource) -> None:
        self.store = store
        self.node = node
        self.source = source
        self.snapshot = GPUSnapshot()
        self._last_error: str | None = None

    async def publish(self) -> GPUSnapshot:
        snapshot = await asyncio.to_thread(self.source.read)
        self.snapshot = snapshot
        if snapshot.error != self._last_error:
            if snapshot.error:
                log.info("no GPU inventory: %s", snapshot.error)
            self._last_error = snapshot.error
        if snapshot.error is not None:
            await self._mark_unknown(snapshot.error)
            return snapshot
        present = set()
        for gpu in snapshot.gpus:
            name = device_name(self.node, gpu.info.index)
            present.add(name)
            await self._upsert(name, _inventory(gpu, snapshot))
        for device in await node_devices(self.store, self.node):
            name = device["metadata"]["name"]
            if name not in present:
                held = (device.get("status") or {}).get("allocations") or []
                log.warning("GPU %s is gone; deleting it (%d allocations)", name, len(held))
                try:
                    await self.store.delete(GPUDEVICES, "", name)
                except LLMOSError as exc:
                    if exc.reason != Reason.NOT_FOUND:
                        raise
        return snapshot

    async def refresh(self) -> GPUSnapshot:
        """A fresh reading for metrics and charts, between heartbeats; writes nothing."""
        self.snapshot = await asyncio.to_thread(self.source.read)
        return self.snapshot

    def capacity(self) -> tuple[dict[str, str], dict[str, str]]:
        """The Node's GPU ``capacity`` and ``allocatable`` (healthy GPUs without MIG)."""
        gpus = self.snapshot.gpus
        if not gpus:
            return {}, {}
        usable = [g for g in gpus if g.health.healthy and g.info.mig_mode != "Enabled"]

        def amounts(items: list[GPU] | tuple[GPU, ...]) -> dict[str, str]:
            total = sum(g.info.memory_total_bytes for g in items)
            return {NVIDIA_GPU: str(len(items)), GPU_MEMORY: format_bytes(total)}

        return amounts(gpus), amounts(usable)

    async def close(self) -> None:
        await asyncio.to_thread(self.source.close)

    async def _upsert(self, name: str, inventory: dict[str, Any]) -> None:
        try:
            await self.store.create(
                GPUDEVICES,
                {
                    "apiVersion": "node.llmos.ai/v1",
                    "kind": "GPUDevice",
                    "metadata": {"name": name, "labels": {NODE_LABEL: self.node}},
                    "spec": {"nodeName": self.node, "unschedulable": False},
                    "status": {},
                },
            )
        except LLMOSError as exc:
            if exc.reason != Reason.ALREADY_EXISTS:
                raise

        def refresh(status: dict[str, Any]) -> None:
            status.update(inventory)
            status.setdefault("allocations", [])

        await edit_status(self.store, name, refresh)

    async def _mark_unknown(self, error: str) -> None:
        def unknown(status: dict[str, Any]) -> None:
            status.update(health="Unknown", healthReasons=[f"GPUs cannot be read: {error}"])

        for device in await node_devices(self.store, self.node):
            await edit_status(self.store, device["metadata"]["name"], unknown)
