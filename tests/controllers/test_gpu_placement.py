"""ReplicaPlacer on a real SQLite store with recorded GPUs: Scheduled, FailedScheduling, Evicted.

The GPUs are the mixed fixture (2x A100 40GB + L4); a second reading, made here,
has the L4 raise XID 79 (fallen off the bus), as NVML would report it.
"""

from __future__ import annotations

import asyncio
import dataclasses
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from llmos.controllers.events import EVENTS, EventRecorder
from llmos.controllers.gpualloc import GPUAllocator
from llmos.controllers.gpudevices import GPUDevicePublisher, edit_status, node_devices
from llmos.controllers.gpuplacement import Member, ReplicaPlacer
from llmos.gpu.inventory import TimedReading
from llmos.gpu.request import GPURequest
from llmos.gpu.source import FixtureGPUSource, load_recording
from llmos.store.sqlite.store import SqliteStore

sys.path.insert(0, str(Path(__file__).parent.parent))
from gpu.helpers import MIXED

GiB = 2**30
SHARE = GPURequest(memory_bytes=GiB)


def notebook(name: str) -> dict[str, Any]:
    return {
        "apiVersion": "ml.llmos.ai/v1",
        "kind": "Notebook",
        "metadata": {"name": name, "namespace": "default", "uid": f"uid-{name}"},
        "spec": {},
    }


def xid_on_l4() -> FixtureGPUSource:
    """The mixed node: healthy at the first reading, the L4 fallen off the bus at the next."""
    recording = load_recording(MIXED)
    first = recording.readings[0]
    l4 = recording.gpus[2].uuid
    broken = TimedReading(
        at="later",
        gpus=tuple(
            dataclasses.replace(r, xid_errors=(79,)) if r.uuid == l4 else r for r in first.gpus
        ),
    )
    return FixtureGPUSource(dataclasses.replace(recording, readings=(first, broken)))


def run(test: Callable[[SqliteStore, GPUDevicePublisher, ReplicaPlacer], Awaitable[None]]) -> None:
    async def main(tmp: Path) -> None:
        store = await SqliteStore.open(tmp / "db")
        try:
            publisher = GPUDevicePublisher(store, "node", xid_on_l4())
            await publisher.publish()
            placer = ReplicaPlacer(GPUAllocator(store, "node"), EventRecorder(store, "test"))
            await test(store, publisher, placer)
        finally:
            await store.close()

    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        asyncio.run(main(Path(tmp)))


async def events(store: SqliteStore) -> list[tuple[str, str, str]]:
    items = (await store.list(EVENTS, "default")).items
    ordered = sorted(items, key=lambda e: (e["spec"]["firstTimestamp"], e["metadata"]["name"]))
    return [(e["spec"]["type"], e["spec"]["reason"], e["spec"]["message"]) for e in ordered]


async def holders(store: SqliteStore) -> list[list[tuple[str, str, int]]]:
    return [
        [(a["kind"], a["name"], a["replica"]) for a in d["status"]["allocations"]]
        for d in await node_devices(store, "node")
    ]


def test_a_gpu_that_turns_unhealthy_evicts_its_replica_to_another() -> None:
    async def test(
        store: SqliteStore, publisher: GPUDevicePublisher, placer: ReplicaPlacer
    ) -> None:
        nb, status = notebook("lab"), {}
        member = Member(0, "the notebook", SHARE)
        first = await placer.place(nb, status, [member])
        assert first.placed[0] is not None and first.placed[0].gpus == (2,)  # binpack: the L4
        assert first.env(0) == {"CUDA_VISIBLE_DEVICES": "2", "CUDA_DEVICE_ORDER": "PCI_BUS_ID"}
        assert await holders(store) == [[], [], [("Notebook", "lab", 0)]]
        again = await placer.place(nb, status, [member])
        assert again.placed[0] is not None and not again.placed[0].new  # held: nothing new
        assert again.placed[0].gpus == (2,)

        await publisher.publish()  # the L4 raises XID 79
        moved = await placer.place(nb, status, [member])
        assert moved.placed[0] is not None and moved.placed[0].gpus == (0,)
        assert await holders(store) == [[("Notebook", "lab", 0)], [], []]
        assert await events(store) == [
            ("Normal", "Scheduled", "the notebook scheduled on GPU 2 (1 GiB of 22.5 GiB)"),
            (
                "Warning",
                "Evicted",
                "the notebook evicted from GPU 2 (1 GiB of 22.5 GiB): GPU 2 is Unhealthy: "
                "XID 79 (GPU has fallen off the bus)",
            ),
            ("Normal", "Scheduled", "the notebook scheduled on GPU 0 (1 GiB of 40 GiB)"),
        ]
        assert status["conditions"][0]["message"] == "the notebook on GPU 0 (1 GiB of 40 GiB)"

    run(test)


def test_a_removed_allocation_evicts_and_a_shortfall_is_pending() -> None:
    async def test(
        store: SqliteStore, publisher: GPUDevicePublisher, placer: ReplicaPlacer
    ) -> None:
        nb, status = notebook("big"), {}
        whole = Member(0, "the notebook", GPURequest(count=1))
        placed = (await placer.place(nb, status, [whole])).placed[0]
        assert placed is not None and placed.gpus == (0,)

        def drop(device_status: dict[str, Any]) -> None:
            device_status["allocations"] = []

        await edit_status(store, "node-gpu0", drop)  # e.g. removed by hand
        await placer.place(nb, status, [whole])
        reasons = [(r, m) for _, r, m in await events(store)]
        assert (
            "Evicted",
            "the notebook evicted from GPU 0 (whole): its allocation on GPU 0 was removed",
        ) in reasons

        other, other_status = notebook("greedy"), {}
        scheduling = await placer.place(
            other, other_status, [Member(0, "the notebook", GPURequest(count=3))]
        )
        assert scheduling.placed == ()
        assert scheduling.shortfall == "needs 3 whole GPUs; only 2 are free (GPU 1, GPU 2)"
        condition = other_status["conditions"][0]
        assert (condition["status"], condition["reason"]) == ("False", "FailedScheduling")
        assert ("Warning", "FailedScheduling", scheduling.shortfall) in await events(store)

        await placer.release(("Notebook", "default", "big"))
        assert await holders(store) == [[], [], []]

    run(test)


def test_members_without_gpus_are_scheduled_on_the_cpu_once() -> None:
    async def test(
        store: SqliteStore, publisher: GPUDevicePublisher, placer: ReplicaPlacer
    ) -> None:
        cluster = {**notebook("ray"), "kind": "MLCluster"}
        status: dict[str, Any] = {}
        members = [Member(0, "the head"), Member(1000, "worker w-0", SHARE)]
        for _ in range(2):
            scheduling = await placer.place(cluster, status, members)
        assert scheduling.env(0) == {"CUDA_VISIBLE_DEVICES": ""}
        assert await holders(store) == [[], [], [("MLCluster", "ray", 1000)]]
        assert [m for _, r, m in await events(store) if r == "Scheduled"] == [
            "the head scheduled on the CPU (no GPU requested)",
            "worker w-0 scheduled on GPU 2 (1 GiB of 22.5 GiB)",
        ]
        assert status["conditions"][0]["message"] == (
            "the head on the CPU; worker w-0 on GPU 2 (1 GiB of 22.5 GiB)"
        )

    run(test)
