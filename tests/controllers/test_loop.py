"""The controller loop on a real SQLite store: watch-driven, one worker per key, backoff."""

from __future__ import annotations

import asyncio
from collections import Counter
from pathlib import Path
from typing import Any

from prometheus_client import CollectorRegistry, generate_latest

from llmos.api.collectors import ControllerCollector
from llmos.controllers.errors import PermanentError, TemporaryError
from llmos.controllers.events import EventRecorder
from llmos.controllers.informer import Informer
from llmos.controllers.loop import Controller, Manager, ObjectKey
from llmos.resources.meta import get_condition
from llmos.store.sqlite.store import SqliteStore

R = "modelservices.ml.llmos.ai"


def obj(name: str, replicas: int = 1) -> dict[str, Any]:
    return {
        "apiVersion": "ml.llmos.ai/v1",
        "kind": "ModelService",
        "metadata": {"name": name, "namespace": "default", "labels": {}},
        "spec": {"model": "x", "replicas": replicas},
        "status": {},
    }


async def until(predicate: Any, timeout: float = 5.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not predicate():
        if asyncio.get_running_loop().time() > deadline:
            raise TimeoutError("condition not met in time")
        await asyncio.sleep(0.01)


class Recorder:
    resource = R

    def __init__(self, store: SqliteStore) -> None:
        self.store = store
        self.seen: Counter[str] = Counter()
        self.active: set[ObjectKey] = set()
        self.overlaps = 0
        self.fail_times: dict[str, int] = {}
        self.permanent: set[str] = set()

    async def reconcile(self, key: ObjectKey) -> float | None:
        if key in self.active:
            self.overlaps += 1
        self.active.add(key)
        try:
            await asyncio.sleep(0.01)
            current = await self.store.get(R, key.namespace, key.name)
            self.seen[key.name] += 1
            if key.name in self.permanent:
                raise PermanentError("spec.model 'x' cannot be served")
            left = self.fail_times.get(key.name, 0)
            if left:
                self.fail_times[key.name] = left - 1
                raise TemporaryError("upstream not ready")
            status = current.setdefault("status", {})
            status["phase"] = f"seen-{current['spec']['replicas']}"
            await self.store.update_status(R, current)
            return None
        finally:
            self.active.discard(key)


def test_reconciles_current_state_one_worker_per_key(tmp_path: Path) -> None:
    async def main() -> None:
        store = await SqliteStore.open(tmp_path / "db")
        rec = Recorder(store)
        controller = Controller(store, rec, workers=4, resync_seconds=3600)
        await controller.start()
        try:
            created = await store.create(R, obj("a"))
            for replicas in range(2, 12):
                created["spec"]["replicas"] = replicas
                created["metadata"].pop("resourceVersion", None)
                created = await store.update(R, created)

            async def settled() -> bool:
                return (await store.get(R, "default", "a"))["status"].get("phase") == "seen-11"

            result = False
            for _ in range(500):
                result = await settled()
                if result:
                    break
                await asyncio.sleep(0.01)
            assert result, "the last reconcile must see the last spec"
            assert rec.overlaps == 0
            # Updates merge while queued: far fewer reconciles than changes.
            assert rec.seen["a"] < 11
            # Our own status writes do not trigger more reconciles: once the queue
            # has drained, the count stays put.
            await until(lambda: len(controller.queue) == 0 and not rec.active)
            await asyncio.sleep(0.1)
            before = rec.seen["a"]
            await asyncio.sleep(0.3)
            assert rec.seen["a"] == before
        finally:
            await controller.stop()
            await store.close()

    asyncio.run(main())


def test_failures_back_off_and_are_reported_in_conditions(tmp_path: Path) -> None:
    async def main() -> None:
        store = await SqliteStore.open(tmp_path / "db")
        rec = Recorder(store)
        rec.fail_times["flaky"] = 3
        rec.permanent.add("broken")
        controller = Controller(store, rec, workers=2, base_delay=0.02, resync_seconds=3600)
        await controller.start()
        try:
            await store.create(R, obj("flaky"))
            await store.create(R, obj("broken"))
            await until(lambda: rec.seen["flaky"] >= 4)

            async def phase(name: str) -> Any:
                return (await store.get(R, "default", name)).get("status", {})

            for _ in range(300):
                status = await phase("flaky")
                if status.get("phase") == "seen-1":
                    break
                await asyncio.sleep(0.01)
            flaky = await store.get(R, "default", "flaky")
            assert flaky["status"]["phase"] == "seen-1"
            reconciled = get_condition(flaky, "Reconciled")
            assert reconciled is not None and reconciled["status"] == "True"

            broken = await store.get(R, "default", "broken")
            condition = get_condition(broken, "Reconciled")
            assert condition is not None and condition["status"] == "False"
            assert "cannot be served" in condition["message"]
            tries = rec.seen["broken"]
            await asyncio.sleep(0.3)
            assert rec.seen["broken"] == tries, "a permanent error is not retried"
            assert controller.reconcile_errors >= 4
        finally:
            await controller.stop()
            await store.close()

    asyncio.run(main())


def test_resync_revisits_every_object(tmp_path: Path) -> None:
    async def main() -> None:
        store = await SqliteStore.open(tmp_path / "db")
        rec = Recorder(store)
        controller = Controller(store, rec, workers=1, resync_seconds=0.1)
        await controller.start()
        try:
            await store.create(R, obj("r"))
            await until(lambda: rec.seen["r"] >= 3)
        finally:
            await controller.stop()
            await store.close()

    asyncio.run(main())


class Woken(Recorder):
    """Woken by others' writes of ``status.wake``, as a culled notebook is by the proxy."""

    def woken_by(self, obj: dict[str, Any]) -> object:
        return (obj.get("status") or {}).get("wake")


def test_a_status_change_queues_only_what_woken_by_picks(tmp_path: Path) -> None:
    async def main() -> None:
        store = await SqliteStore.open(tmp_path / "db")
        rec = Woken(store)
        controller = Controller(store, rec, workers=1, resync_seconds=3600)
        await controller.start()
        try:
            await store.create(R, obj("w"))
            await until(lambda: rec.seen["w"] == 1)  # its own status write queues nothing
            current = await store.get(R, "default", "w")
            current["status"]["note"] = "another status change"
            await store.update_status(R, current)
            # Events come in order and one worker takes keys in order: once a later
            # object is reconciled, a key queued by the note would have been too.
            await store.create(R, obj("later"))
            await until(lambda: rec.seen["later"] == 1)
            assert rec.seen["w"] == 1
            current = await store.get(R, "default", "w")
            current["status"]["wake"] = "2026-01-02T03:04:05Z"
            await store.update_status(R, current)
            await until(lambda: rec.seen["w"] == 2)
        finally:
            await controller.stop()
            await store.close()

    asyncio.run(main())


def test_informer_reads_its_writes_and_event_recorder_counts(tmp_path: Path) -> None:
    async def main() -> None:
        store = await SqliteStore.open(tmp_path / "db")
        informer = Informer(store, R)
        await informer.start()
        try:
            created = await store.create(R, obj("i"))
            await informer.wait_for(int(created["metadata"]["resourceVersion"]))
            assert informer.get("i", "default") is not None
            await store.delete(R, "default", "i")
            await until(lambda: informer.get("i", "default") is None)

            recorder = EventRecorder(store, "test")
            target = await store.create(R, obj("e"))
            for _ in range(3):
                await recorder.record(target, "BackOff", "restarting", "Warning")
            events = (await store.list("events.node.llmos.ai", "default")).items
            assert len(events) == 1
            assert events[0]["spec"]["count"] == 3
            assert events[0]["spec"]["involvedObject"]["uid"] == target["metadata"]["uid"]
        finally:
            await informer.stop()
            await store.close()

    asyncio.run(main())


def test_the_controller_metrics_count_its_queue_runs_and_errors(tmp_path: Path) -> None:
    def series(registry: CollectorRegistry, name: str) -> float:
        prefix = f'{name}{{controller="Recorder"}} '
        text = generate_latest(registry).decode()
        return float(next(line for line in text.splitlines() if line.startswith(prefix)).split()[1])

    async def main() -> None:
        store = await SqliteStore.open(tmp_path / "db")
        rec = Recorder(store)
        rec.permanent.add("broken")
        manager = Manager()
        controller = manager.add(Controller(store, rec, workers=1, resync_seconds=3600))
        registry = CollectorRegistry()
        registry.register(ControllerCollector(manager))
        for name in ("a", "b", "c"):  # waiting: nothing works the queue yet
            controller.queue.add(ObjectKey("default", name))
        assert series(registry, "llmos_controller_queue_depth") == 3
        await controller.start()
        try:
            await store.create(R, obj("broken"))
            await until(lambda: controller.reconcile_errors >= 1)
            await until(lambda: len(controller.queue) == 0)
            assert series(registry, "llmos_controller_queue_depth") == 0
            assert series(registry, "llmos_controller_reconcile_errors_total") >= 1
            assert series(registry, "llmos_controller_reconciles_total") >= 4  # a, b, c, broken
        finally:
            await controller.stop()
            await store.close()

    asyncio.run(main())
