"""CPU and memory reservations: the shortfall table, then ReplicaPlacer on a real SQLite store.

A node of 2 CPUs and 4 GiB stands in for the machine (``NodeAllocator``'s
``capacity``), so the numbers do not depend on where the tests run.
"""

from __future__ import annotations

import asyncio
import sys
import tempfile
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from llmos.controllers.events import EVENTS, EventRecorder
from llmos.controllers.gpualloc import GPUAllocator
from llmos.controllers.gpudevices import GPUDevicePublisher, node_devices
from llmos.controllers.gpuplacement import Member, ReplicaPlacer, reservation
from llmos.controllers.node import NODES, NodeAgent
from llmos.controllers.nodealloc import Held, NodeAllocator, Reservation, shortfall
from llmos.gpu.request import GPURequest
from llmos.gpu.source import FixtureGPUSource, load_recording
from llmos.store.sqlite.store import SqliteStore

sys.path.insert(0, str(Path(__file__).parent.parent))
from gpu.helpers import MIXED

GiB = 2**30
NODE = Reservation(cpu=2, memory=4 * GiB)


def held(name: str, cpu: float = 0, memory: int = 0, replica: int = 0) -> Held:
    return Held(("ModelService", "default", name, replica), Reservation(cpu, memory))


@pytest.mark.parametrize(
    ("others", "want", "message"),
    [
        ([], Reservation(), None),
        ([], Reservation(cpu=2, memory=4 * GiB), None),
        ([held("a", cpu=1.5)], Reservation(cpu=0.5), None),
        ([held("a", cpu=0.1), held("b", cpu=0.2)], Reservation(cpu=1.7), None),
        ([held("a", cpu=2, memory=4 * GiB)], Reservation(), None),  # asks nothing: always fits
        (
            [held("chat", cpu=1, replica=0), held("chat", cpu=0.5, replica=1)],
            Reservation(cpu=1),
            "needs 1 CPU; 0.5 of this node's 2 CPUs is free (held by default/chat: 1.5 CPUs)",
        ),
        (
            [held("a", memory=GiB), held("b", memory=2 * GiB), held("c", cpu=1)],
            Reservation(cpu=0.5, memory=2 * GiB),
            "needs 0.5 CPU and 2 GiB of memory; 1 GiB of this node's 4 GiB is free "
            "(held by default/b: 2 GiB, default/a: 1 GiB)",
        ),
        (
            [held("a", cpu=1.5, memory=3 * GiB)],
            Reservation(cpu=1, memory=2 * GiB),
            "needs 1 CPU and 2 GiB of memory; 0.5 of this node's 2 CPUs is free (held by "
            "default/a: 1.5 CPUs); 1 GiB of this node's 4 GiB is free (held by default/a: 3 GiB)",
        ),
        (
            [held(n, cpu=0.25) for n in "abcde"],
            Reservation(cpu=1),
            "needs 1 CPU; 0.75 of this node's 2 CPUs is free (held by default/a: 0.25 CPU, "
            "default/b: 0.25 CPU, default/c: 0.25 CPU and 2 more)",
        ),
        (
            [],
            Reservation(cpu=3, memory=64 * GiB),
            "needs 3 CPUs and 64 GiB of memory; this node has only 2 CPUs; "
            "this node has only 4 GiB of memory",
        ),
    ],
)
def test_shortfall(others: list[Held], want: Reservation, message: str | None) -> None:
    assert shortfall(NODE, others, want) == message


def notebook(name: str, kind: str = "Notebook") -> dict[str, Any]:
    return {
        "apiVersion": "ml.llmos.ai/v1",
        "kind": kind,
        "metadata": {"name": name, "namespace": "default", "uid": f"uid-{name}"},
        "spec": {},
    }


class Node:
    """A store with this node registered, its recorded GPUs, and a placer over both."""

    def __init__(self, store: SqliteStore, data: Path) -> None:
        self.store = store
        self.agent = NodeAgent(store, "node", data)
        self.allocator = NodeAllocator(store, "node", capacity=lambda: NODE)
        self.placer = self.placer_after_restart()

    def placer_after_restart(self) -> ReplicaPlacer:
        return ReplicaPlacer(
            GPUAllocator(self.store, "node"), EventRecorder(self.store, "test"), self.allocator
        )

    async def status(self) -> dict[str, Any]:
        return (await self.store.get(NODES, "", "node"))["status"]

    async def reserved(self) -> list[tuple[str, int, float, int]]:
        return [
            (a["name"], a["replica"], a["cpu"], a["memoryBytes"])
            for a in (await self.status()).get("allocations") or []
        ]

    async def events(self) -> list[tuple[str, str]]:
        items = (await self.store.list(EVENTS, "default")).items
        ordered = sorted(items, key=lambda e: (e["spec"]["firstTimestamp"], e["metadata"]["name"]))
        return [(e["spec"]["reason"], e["spec"]["message"]) for e in ordered]


def run(test: Callable[[Node], Awaitable[None]]) -> None:
    async def main(tmp: Path) -> None:
        store = await SqliteStore.open(tmp / "db")
        try:
            await GPUDevicePublisher(
                store, "node", FixtureGPUSource(load_recording(MIXED))
            ).publish()
            node = Node(store, tmp)
            await node.agent.register()
            await test(node)
        finally:
            await store.close()

    with tempfile.TemporaryDirectory() as tmp:
        asyncio.run(main(Path(tmp)))


def member(cpu: str | None = None, memory: str | None = None, **gpus: Any) -> Member:
    resources = {k: v for k, v in {"cpu": cpu, "memory": memory}.items() if v is not None}
    return Member(0, "the notebook", reserves=reservation(resources), **gpus)


def test_an_over_commit_is_pending_until_the_holder_goes() -> None:
    async def test(node: Node) -> None:
        first, second = notebook("first"), notebook("second")
        await node.placer.place(first, {}, [member(cpu="1500m", memory="3Gi")])
        assert await node.reserved() == [("first", 0, 1.5, 3 * GiB)]
        assert (await node.status())["allocated"] == {"cpu": "1500m", "memory": "3Gi"}

        status: dict[str, Any] = {}
        scheduling = await node.placer.place(second, status, [member(cpu="1")])
        message = "needs 1 CPU; 0.5 of this node's 2 CPUs is free (held by default/first: 1.5 CPUs)"
        assert (scheduling.placed, scheduling.shortfall) == ((), message)
        assert not scheduling.exceeds_node  # waiting helps
        condition = status["conditions"][0]
        assert (condition["status"], condition["reason"], condition["message"]) == (
            "False",
            "FailedScheduling",
            message,
        )
        assert ("FailedScheduling", message) in await node.events()
        assert await node.reserved() == [("first", 0, 1.5, 3 * GiB)]  # nothing half-written

        await node.agent.register()  # a heartbeat keeps what is reserved
        assert await node.reserved() == [("first", 0, 1.5, 3 * GiB)]

        await node.placer.release(("Notebook", "default", "first"))
        assert (await node.placer.place(second, {}, [member(cpu="1")])).shortfall is None
        assert await node.reserved() == [("second", 0, 1.0, 0)]
        assert (await node.status())["allocated"] == {"cpu": "1", "memory": "0"}

    run(test)


def test_a_changed_request_is_placed_again_and_one_past_the_node_never_fits() -> None:
    async def test(node: Node) -> None:
        lab = notebook("lab")
        await node.placer.place(lab, {}, [member(memory="1Gi")])
        await node.placer.place(lab, {}, [member(memory="2Gi")])
        assert await node.reserved() == [("lab", 0, 0.0, 2 * GiB)]

        status: dict[str, Any] = {}
        scheduling = await node.placer.place(lab, status, [member(memory="64Gi")])
        assert scheduling.shortfall == (
            "needs 64 GiB of memory; this node has only 4 GiB of memory"
        )
        assert scheduling.exceeds_node  # no waiting helps, and the condition says so
        assert status["conditions"][0]["reason"] == "ExceedsNode"
        assert await node.reserved() == []  # not run: it holds nothing

        await node.placer.place(lab, {}, [member()])  # asks nothing: fits, reserves nothing
        assert await node.reserved() == []

    run(test)


def test_a_replica_whose_gpus_do_not_fit_holds_no_cpu() -> None:
    async def test(node: Node) -> None:
        scheduling = await node.placer.place(
            notebook("greedy"), {}, [member(cpu="1", request=GPURequest(count=4))]
        )
        assert (scheduling.shortfall or "").startswith("needs 4 whole GPUs; ")
        assert await node.reserved() == []

        # CPUs short: its GPUs are not taken either.
        await node.placer.place(notebook("cpus"), {}, [member(cpu="2")])
        gpu = member(cpu="1", request=GPURequest(count=1))
        assert (await node.placer.place(notebook("gpu"), {}, [gpu])).shortfall is not None
        devices = await node_devices(node.store, "node")
        assert [d["status"]["allocations"] for d in devices] == [[], [], []]

    run(test)


def test_reservations_outlive_a_restart_and_the_sweep_drops_the_gone() -> None:
    async def test(node: Node) -> None:
        cluster = notebook("ray", kind="MLCluster")
        await node.store.create("mlclusters.ml.llmos.ai", {**cluster, "spec": {"head": {}}})
        head, worker = (
            Member(0, "the head", reserves=reservation({"cpu": 1})),
            Member(1000, "worker cpu-0", reserves=reservation({"cpu": 1})),
        )
        await node.placer.place(cluster, {}, [head, worker])
        await node.placer.place(notebook("gone"), {}, [member(memory="1Gi")])  # no such object

        # A new server: a waiting workload finds the CPUs still held by those that ran.
        placer = node.placer_after_restart()
        assert await node.allocator.sweep() == 1  # the notebook is gone
        waiting = await placer.place(notebook("waiting"), {}, [member(cpu="1")])
        assert waiting.shortfall == (
            "needs 1 CPU; 0 of this node's 2 CPUs is free (held by default/ray: 2 CPUs)"
        )
        again = await placer.place(cluster, {}, [head, worker])
        assert again.shortfall is None
        assert await node.reserved() == [("ray", 0, 1.0, 0), ("ray", 1000, 1.0, 0)]

        await placer.release(("MLCluster", "default", "ray"), replicas=[1000])
        assert await node.reserved() == [("ray", 0, 1.0, 0)]

    run(test)
