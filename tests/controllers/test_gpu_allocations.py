"""GPUDevices and GPU allocations on a real SQLite store, with recorded GPUs."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from llmos.controllers.gpualloc import GPUAllocator
from llmos.controllers.gpudevices import GPUDEVICES, GPUDevicePublisher, node_devices
from llmos.controllers.node import NodeAgent
from llmos.gpu.request import GPURequest
from llmos.gpu.scheduler import Unschedulable
from llmos.gpu.source import FixtureGPUSource, load_recording
from llmos.resources.node import GPUDevice
from llmos.store.sqlite.store import SqliteStore

sys.path.insert(0, str(Path(__file__).parent.parent))
from gpu.helpers import MIXED, RTX4090

GiB = 2**30
MS = "modelservices.ml.llmos.ai"
OWNER = ("ModelService", "default", "chat")


def run(test: Callable[[SqliteStore], Awaitable[None]], tmp_path: Path) -> None:
    async def main() -> None:
        store = await SqliteStore.open(tmp_path / "db")
        try:
            await test(store)
        finally:
            await store.close()

    asyncio.run(main())


async def allocations(store: SqliteStore) -> dict[str, list[dict[str, Any]]]:
    return {
        d["metadata"]["name"]: d["status"].get("allocations") or []
        for d in await node_devices(store, "node")
    }


def ms(name: str, replicas: int = 1) -> dict[str, Any]:
    return {
        "apiVersion": "ml.llmos.ai/v1",
        "kind": "ModelService",
        "metadata": {"name": name, "namespace": "default", "labels": {}},
        "spec": {"model": "bundled:smollm2", "replicas": replicas},
        "status": {},
    }


def test_publisher_writes_one_valid_gpudevice_per_gpu(tmp_path: Path) -> None:
    async def test(store: SqliteStore) -> None:
        publisher = GPUDevicePublisher(store, "node", FixtureGPUSource.from_file(MIXED))
        await publisher.publish()
        devices = await node_devices(store, "node")
        assert [d["metadata"]["name"] for d in devices] == ["node-gpu0", "node-gpu1", "node-gpu2"]
        for device in devices:
            GPUDevice.model_validate(device)  # the stored shape is the kind's schema
            assert device["metadata"]["labels"] == {"llmos.ai/node": "node"}
            assert device["spec"] == {"nodeName": "node", "unschedulable": False}
        l4 = devices[2]["status"]
        assert (l4["product"], l4["memoryTotalBytes"], l4["computeCapability"]) == (
            "NVIDIA L4",
            23034 * 2**20,
            "8.9",
        )
        assert (l4["health"], l4["migMode"], l4["driverVersion"], l4["cudaVersion"]) == (
            "Healthy",
            "NotSupported",
            "550.54.15",
            "12.4",
        )
        assert l4["usage"]["temperatureCelsius"] == 33
        assert publisher.capacity() == (
            {"nvidia.com/gpu": "3", "llmos.ai/gpu-memory": "104954Mi"},
            {"nvidia.com/gpu": "3", "llmos.ai/gpu-memory": "104954Mi"},
        )
        await publisher.publish()  # the next reading
        devices = await node_devices(store, "node")
        assert devices[2]["status"]["usage"]["utilizationPercent"] == 91

    run(test, tmp_path)


def test_place_reuse_change_and_release(tmp_path: Path) -> None:
    async def test(store: SqliteStore) -> None:
        publisher = GPUDevicePublisher(store, "node", FixtureGPUSource.from_file(MIXED))
        await publisher.publish()
        allocator = GPUAllocator(store, "node")
        share = GPURequest(memory_bytes=10 * GiB)
        placed = await allocator.place(OWNER, 0, share)
        assert (placed.gpus, placed.new, placed.fraction) == (
            (2,),
            True,
            10 * GiB / (23034 * 2**20),
        )
        assert placed.describe() == "GPU 2 (10 GiB of 22.5 GiB)"
        entry = {
            "kind": "ModelService",
            "namespace": "default",
            "name": "chat",
            "replica": 0,
            "memoryBytes": 10 * GiB,
            "whole": False,
        }
        assert await allocations(store) == {"node-gpu0": [], "node-gpu1": [], "node-gpu2": [entry]}
        # Found again, not placed again; heartbeats keep it.
        await publisher.publish()
        again = await allocator.place(OWNER, 0, share, "spread")
        assert (again.gpus, again.new) == ((2,), False)
        # A changed request is placed afresh, and the old hold goes.
        whole = await allocator.place(OWNER, 0, GPURequest(count=2))
        assert (whole.gpus, whole.new, whole.fraction) == ((0, 1), True, None)
        held = await allocations(store)
        assert held["node-gpu2"] == []
        assert [a["whole"] for a in held["node-gpu0"] + held["node-gpu1"]] == [True, True]
        # Others cannot share a GPU held whole.
        with pytest.raises(Unschedulable) as caught:
            await allocator.place(
                ("ModelService", "default", "other"), 0, GPURequest(memory_bytes=30 * GiB)
            )
        assert str(caught.value) == (
            "needs 1 GPU with 30 GiB free; largest free is 22.5 GiB on GPU 2"
        )
        assert await allocator.release(OWNER, keep=0) == 2
        assert await allocations(store) == {"node-gpu0": [], "node-gpu1": [], "node-gpu2": []}

    run(test, tmp_path)


def test_concurrent_requests_never_overcommit(tmp_path: Path) -> None:
    async def test(store: SqliteStore) -> None:
        publisher = GPUDevicePublisher(store, "node", FixtureGPUSource.from_file(RTX4090))
        await publisher.publish()
        allocator = GPUAllocator(store, "node")
        results = await asyncio.gather(
            *(
                allocator.place(
                    ("ModelService", "default", f"m{i}"), 0, GPURequest(memory_bytes=16 * GiB)
                )
                for i in range(3)
            ),
            publisher.publish(),
            return_exceptions=True,
        )
        refused = [str(r) for r in results if isinstance(r, Unschedulable)]
        assert refused == ["needs 1 GPU with 16 GiB free; largest free is 8 GiB on GPU 0"] * 2
        assert len((await allocations(store))["node-gpu0"]) == 1

    run(test, tmp_path)


def test_sweep_drops_allocations_of_workloads_gone_or_scaled_down(tmp_path: Path) -> None:
    async def test(store: SqliteStore) -> None:
        await GPUDevicePublisher(store, "node", FixtureGPUSource.from_file(MIXED)).publish()
        allocator = GPUAllocator(store, "node")
        await store.create(MS, ms("kept", replicas=1))
        share = GPURequest(memory_bytes=GiB)
        for owner, replica in [("kept", 0), ("kept", 1), ("gone", 0)]:
            await allocator.place(("ModelService", "default", owner), replica, share)
        await allocator.place(("Notebook", "default", "gone-lab"), 0, share)  # Notebooks too
        await allocator.place(("Job", "default", "lab"), 0, share)  # a kind it does not know
        assert await allocator.sweep() == 3
        left = [
            (a["kind"], a["name"], a["replica"]) for a in (await allocations(store))["node-gpu2"]
        ]
        assert sorted(left) == [("Job", "lab", 0), ("ModelService", "kept", 0)]

    run(test, tmp_path)


def test_gone_gpus_are_deleted_and_unreadable_ones_unknown(tmp_path: Path) -> None:
    async def test(store: SqliteStore) -> None:
        recording = load_recording(MIXED)
        source = FixtureGPUSource(recording)
        publisher = GPUDevicePublisher(store, "node", source)
        await publisher.publish()
        source.recording = dataclasses.replace(recording, gpus=recording.gpus[:2])
        await publisher.publish()
        assert [d["metadata"]["name"] for d in await node_devices(store, "node")] == [
            "node-gpu0",
            "node-gpu1",
        ]

        class Broken:
            def read(self) -> Any:
                from llmos.gpu.inventory import GPUSnapshot

                return GPUSnapshot(error="Driver Not Loaded")

            def close(self) -> None:
                pass

        broken = GPUDevicePublisher(store, "node", Broken())
        await broken.publish()
        device = await store.get(GPUDEVICES, "", "node-gpu0")
        assert device["status"]["health"] == "Unknown"
        assert device["status"]["healthReasons"] == ["GPUs cannot be read: Driver Not Loaded"]
        assert broken.capacity() == ({}, {})

    run(test, tmp_path)


def test_node_capacity_counts_healthy_gpus_as_allocatable(tmp_path: Path) -> None:
    raw = json.loads(MIXED.read_text())
    raw["readings"][0]["gpus"][0]["xidErrors"] = [79]
    fixture = tmp_path / "xid.json"
    fixture.write_text(json.dumps(raw))

    async def test(store: SqliteStore) -> None:
        publisher = GPUDevicePublisher(store, "node", FixtureGPUSource.from_file(fixture))
        agent = NodeAgent(store, "node", tmp_path, gpus=publisher)
        node = await agent.register()
        assert node["status"]["capacity"]["nvidia.com/gpu"] == "3"
        assert node["status"]["capacity"]["llmos.ai/gpu-memory"] == "104954Mi"
        assert node["status"]["allocatable"]["nvidia.com/gpu"] == "2"
        assert node["status"]["allocatable"]["llmos.ai/gpu-memory"] == "63994Mi"
        assert node["status"]["usage"]["llmos.ai/gpu-memory"] == "6Mi"
        sick = await store.get(GPUDEVICES, "", "node-gpu0")
        assert sick["status"]["health"] == "Unhealthy"
        assert sick["status"]["healthReasons"] == ["XID 79 (GPU has fallen off the bus)"]
        with pytest.raises(Unschedulable, match="GPU 0 is Unhealthy: XID 79"):
            await GPUAllocator(store, "node").place(OWNER, 0, GPURequest(count=3))
        await agent.stop()

    run(test, tmp_path)
