"""The controller loop, informers and events on the Kubernetes store, as on SQLite."""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from kubeplane import KubeCluster
from llmos.controllers.events import EventRecorder
from llmos.controllers.informer import Informer
from llmos.controllers.loop import Controller, ObjectKey
from llmos.store.kube.client import KubeConnection
from llmos.store.kube.store import KubeStore

# Events: no LLMOS controller reconciles them, and tests/kube shares its API server
# with a running LLMOS server whose ModelService controller would join in.
R = "events.node.llmos.ai"


def obj(namespace: str, name: str, count: int = 1) -> dict[str, Any]:
    return {
        "apiVersion": "node.llmos.ai/v1",
        "kind": "Event",
        "metadata": {"name": name, "namespace": namespace, "labels": {}},
        "spec": {
            "involvedObject": {"kind": "Thing", "name": "x"},
            "reason": "Test",
            "count": count,
        },
    }


async def until(predicate: Callable[[], Awaitable[bool]], timeout: float = 30.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not await predicate():
        assert asyncio.get_running_loop().time() < deadline, "condition not met in time"
        await asyncio.sleep(0.05)


def run(cluster: KubeCluster, body: Callable[[KubeStore, str], Awaitable[None]]) -> None:
    async def main() -> None:
        connection = KubeConnection(cluster.url, cluster.token, cluster.ca_file.read_bytes())
        store = KubeStore(connection)
        try:
            await body(store, f"c-{uuid.uuid4().hex[:8]}")
        finally:
            await store.close()

    asyncio.run(main())


class PhaseWriter:
    """Writes the spec's count into status.phase, counting reconciles per name."""

    resource = R

    def __init__(self, store: KubeStore, namespace: str) -> None:
        self.store = store
        self.namespace = namespace
        self.seen: Counter[str] = Counter()
        self.active: set[ObjectKey] = set()
        self.overlaps = 0

    async def reconcile(self, key: ObjectKey) -> float | None:
        if key.namespace != self.namespace:  # other tests' objects share this API server
            return None
        if key in self.active:
            self.overlaps += 1
        self.active.add(key)
        try:
            current = await self.store.get(R, key.namespace, key.name)
            self.seen[key.name] += 1
            current.setdefault("status", {})["phase"] = f"seen-{current['spec']['count']}"
            await self.store.update_status(R, current)
            return None
        finally:
            self.active.discard(key)


@pytest.mark.slow
def test_the_controller_reconciles_the_latest_spec_once_per_key(kube_crds: KubeCluster) -> None:
    async def body(store: KubeStore, ns: str) -> None:
        writer = PhaseWriter(store, ns)
        controller = Controller(store, writer, workers=4, resync_seconds=3600)
        await controller.start()
        try:
            created = await store.create(R, obj(ns, "a"))
            for count in range(2, 8):
                created["spec"]["count"] = count
                created["metadata"].pop("resourceVersion", None)  # the writer races us
                created = await store.update(R, created)

            async def settled() -> bool:
                current = await store.get(R, ns, "a")
                return bool(current.get("status", {}).get("phase") == "seen-7")

            await until(settled)
            assert writer.overlaps == 0

            # Our own status writes do not trigger more reconciles: once a conflict's
            # retry (a status write racing the spec updates) is done, the count stays put.
            async def quiet() -> bool:
                before = writer.seen["a"]
                await asyncio.sleep(0.5)
                return writer.seen["a"] == before

            await until(quiet)
            before = writer.seen["a"]
            await asyncio.sleep(1.0)
            assert writer.seen["a"] == before
        finally:
            await controller.stop()

    run(kube_crds, body)


@pytest.mark.slow
def test_informer_reads_its_writes_and_events_are_counted(kube_crds: KubeCluster) -> None:
    async def body(store: KubeStore, ns: str) -> None:
        informer = Informer(store, R)
        await informer.start()
        try:
            created = await store.create(R, obj(ns, "i"))
            await informer.wait_for(int(created["metadata"]["resourceVersion"]), timeout=10)
            assert informer.get("i", ns) is not None
            await store.delete(R, ns, "i")
            await until(lambda: asyncio.sleep(0, informer.get("i", ns) is None))

            recorder = EventRecorder(store, "test")
            target = await store.create(R, obj(ns, "e"))
            for _ in range(3):
                await recorder.record(target, "BackOff", "restarting", "Warning")
            uid = target["metadata"]["uid"]
            events = [
                e
                for e in (await store.list(R, ns)).items
                if e["spec"]["involvedObject"].get("uid") == uid
            ]
            assert len(events) == 1
            assert events[0]["spec"]["count"] == 3
            assert events[0]["spec"]["involvedObject"]["uid"] == target["metadata"]["uid"]
        finally:
            await informer.stop()

    run(kube_crds, body)
