"""NodeAgent: registers this machine as a Node and keeps its heartbeat fresh.

With a :class:`~llmos.controllers.gpudevices.GPUDevicePublisher` it also
publishes the GPUs at every heartbeat: one GPUDevice each, and the Node's
``capacity``/``allocatable`` of ``nvidia.com/gpu`` and ``llmos.ai/gpu-memory``.
The CPU and memory reserved by workload replicas (``status.allocations`` and
``allocated``) are the :class:`~llmos.controllers.nodealloc.NodeAllocator`'s;
the heartbeat keeps them.
"""

from __future__ import annotations

import logging
import os
import platform
import shutil
import socket
from pathlib import Path
from typing import Any

import psutil

from llmos import __version__
from llmos._lib import timefmt
from llmos._lib.errors import LLMOSError, Reason
from llmos._lib.quantity import format_bytes
from llmos._lib.tasks import Periodic
from llmos._lib.tls import local_addresses
from llmos.controllers.gpudevices import GPU_MEMORY, GPUDevicePublisher
from llmos.resources.meta import set_condition
from llmos.store.base import ResourceStore
from llmos.store.edits import edit_status

log = logging.getLogger(__name__)
NODES = "nodes.node.llmos.ai"


def machine_size() -> tuple[int, int]:
    """This machine's cores and bytes of memory: its Node's ``capacity`` and
    ``allocatable``, which is what its replicas may reserve together (nodealloc)."""
    return os.cpu_count() or 1, psutil.virtual_memory().total


def _capacity(data_dir: Path) -> dict[str, str]:
    cores, memory = machine_size()
    return {
        "cpu": str(cores),
        "memory": format_bytes(memory),
        "ephemeral-storage": format_bytes(shutil.disk_usage(data_dir).total),
    }


def _usage(data_dir: Path) -> dict[str, str]:
    cores = (os.cpu_count() or 1) * psutil.cpu_percent(interval=None) / 100
    return {
        "cpu": f"{cores:.2f}",
        "memory": format_bytes(psutil.virtual_memory().used),
        "ephemeral-storage": format_bytes(shutil.disk_usage(data_dir).used),
    }


def _addresses() -> list[dict[str, str]]:
    result = [{"type": "Hostname", "address": socket.gethostname().lower()}]
    for address in local_addresses():
        if address not in ("127.0.0.1", "::1") and not address.startswith("fe80"):
            result.append({"type": "InternalIP", "address": address})
    return result


class NodeAgent:
    def __init__(
        self,
        store: ResourceStore,
        name: str,
        data_dir: Path,
        interval: float = 30.0,
        gpus: GPUDevicePublisher | None = None,
    ) -> None:
        self.store = store
        self.name = name
        self.data_dir = data_dir
        self.gpus = gpus
        self._beats = Periodic(self.register, interval, "the node heartbeat", log=log)

    def _status(self, previous: dict[str, Any]) -> dict[str, Any]:
        capacity = _capacity(self.data_dir)
        allocatable = dict(capacity)
        usage = _usage(self.data_dir)
        if self.gpus is not None:
            gpu_capacity, gpu_allocatable = self.gpus.capacity()
            capacity.update(gpu_capacity)
            allocatable.update(gpu_allocatable)
            used = [g.reading.memory_used_bytes for g in self.gpus.snapshot.gpus]
            if gpu_capacity and None not in used:
                usage[GPU_MEMORY] = format_bytes(sum(u for u in used if u is not None))
        status: dict[str, Any] = {
            "phase": "Ready",
            "conditions": list(previous.get("conditions") or []),
            "capacity": capacity,
            "allocatable": allocatable,
            "usage": usage,
            "addresses": _addresses(),
            "nodeInfo": {
                "hostname": socket.gethostname().lower(),
                "os": platform.system().lower(),
                "arch": platform.machine(),
                "kernelVersion": platform.release(),
                "llmosVersion": __version__,
                "mode": "embedded",
            },
            "lastHeartbeatTime": timefmt.rfc3339(),
        }
        # The CPU and memory reservations are the NodeAllocator's: kept as they are.
        for field in ("allocations", "allocated"):
            if field in previous:
                status[field] = previous[field]
        set_condition(status, "Ready", True, "LLMOSRunning", "the LLMOS server is running")
        return status

    async def register(self) -> dict[str, Any]:
        if self.gpus is not None:
            await self.gpus.publish()
        await self._node()  # made at the first start

        def beat(status: dict[str, Any]) -> None:
            fresh = self._status(status)
            status.clear()
            status.update(fresh)

        # Re-read on a conflict: a reservation may be written meanwhile.
        saved = await edit_status(self.store, NODES, "Node", self.name, beat)
        if saved is None:
            raise LLMOSError(f"Node {self.name} was deleted meanwhile; try again", Reason.CONFLICT)
        return saved

    async def _node(self) -> dict[str, Any]:
        try:
            return await self.store.get(NODES, "", self.name)
        except LLMOSError as exc:
            if exc.reason != Reason.NOT_FOUND:
                raise
        return await self.store.create(
            NODES,
            {
                "apiVersion": "node.llmos.ai/v1",
                "kind": "Node",
                "metadata": {
                    "name": self.name,
                    "labels": {"llmos.ai/role": "server"},
                    "annotations": {},
                },
                "spec": {"unschedulable": False},
                "status": {},
            },
        )

    async def start(self) -> None:
        await self.register()
        await self._beats.start()

    async def stop(self) -> None:
        await self._beats.stop()
        if self.gpus is not None:
            await self.gpus.close()
