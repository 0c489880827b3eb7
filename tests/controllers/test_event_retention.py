"""EventRetention: Events expire after their TTL, go with their object, and are capped per object.

The sweep's own tests run on the real stores, SQLite and (as in cluster mode) the test
session's Kubernetes control plane, with the EventRecorder writing the Events and the
sweep's clock moved forward instead of waiting an hour. The last test runs a real
server with short settings and reads the Events back through the API, as a user would.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from factories import create_ms, create_namespace, ms_path
from kubeplane import KubeCluster
from llmos._lib import timefmt
from llmos.controllers.event_retention import BATCH, EventRetention
from llmos.controllers.events import EVENTS, EventRecorder
from llmos.store.base import ResourceStore
from llmos.store.kube.client import KubeConnection
from llmos.store.kube.store import KubeStore
from llmos.store.sqlite.store import SqliteStore
from server import admin_server

MS = "modelservices.ml.llmos.ai"
HOUR = 3600.0
Body = Callable[[ResourceStore, str], Awaitable[None]]


@pytest.fixture(params=["sqlite", "kube"])
def run_on_store(request: pytest.FixtureRequest, tmp_path: Path) -> Callable[[Body], None]:
    """Runs ``body(store, namespace)`` on a fresh event loop, on SQLite or on Kubernetes."""
    namespace = f"t-{uuid.uuid4().hex[:10]}"

    async def open_store() -> ResourceStore:
        if request.param == "sqlite":
            return await SqliteStore.open(tmp_path / "db")
        cluster: KubeCluster = request.getfixturevalue("kube_crds")
        return KubeStore(KubeConnection(cluster.url, cluster.token, cluster.ca_file.read_bytes()))

    def run(body: Body) -> None:
        async def main() -> None:
            store = await open_store()
            try:
                scoped: Any = OneNamespace(store, namespace)
                await body(scoped, namespace)
            finally:
                await store.close()

        asyncio.run(main())

    return run


class OneNamespace:
    """The store, with a list of every namespace narrowed to the test's own.

    The Kubernetes control plane is shared by the whole test session: a sweep here
    must neither see nor delete the Events of other tests.
    """

    def __init__(self, store: ResourceStore, namespace: str) -> None:
        self.store = store
        self.namespace = namespace

    def __getattr__(self, name: str) -> Any:
        return getattr(self.store, name)

    async def list(self, resource: str, namespace: str | None = None, **kwargs: Any) -> Any:
        return await self.store.list(resource, namespace or self.namespace, **kwargs)


def ms(namespace: str, name: str) -> dict[str, Any]:
    return {
        "apiVersion": "ml.llmos.ai/v1",
        "kind": "ModelService",
        "metadata": {"name": name, "namespace": namespace, "labels": {}},
        "spec": {"model": "x", "replicas": 0},
        "status": {},
    }


async def events_about(store: ResourceStore, namespace: str, name: str) -> list[dict[str, Any]]:
    """The Events of object ``name``, oldest first, as the API would list them."""
    items = (await store.list(EVENTS, namespace)).items
    mine = [e for e in items if e["spec"]["involvedObject"]["name"] == name]
    return sorted(mine, key=lambda e: int(e["metadata"]["resourceVersion"]))


def messages(events: list[dict[str, Any]]) -> list[str]:
    return [e["spec"]["message"] for e in events]


def ago(seconds: float) -> str:
    """The RFC 3339 timestamp of ``seconds`` ago, as the recorder writes them."""
    return timefmt.rfc3339(datetime.fromtimestamp(time.time() - seconds, UTC))


def later(seconds: float) -> Callable[[], float]:
    """A clock ``seconds`` ahead of the real one."""
    return lambda: time.time() + seconds


def event_at(obj: dict[str, Any], name: str, **times: str) -> dict[str, Any]:
    """An Event about ``obj`` with the timestamps given (as another writer might leave it)."""
    meta = obj["metadata"]
    return {
        "apiVersion": "node.llmos.ai/v1",
        "kind": "Event",
        "metadata": {"name": name, "namespace": meta["namespace"], "labels": {}},
        "spec": {
            "involvedObject": {
                "apiVersion": obj["apiVersion"],
                "kind": obj["kind"],
                "name": meta["name"],
                "namespace": meta["namespace"],
                "uid": meta["uid"],
            },
            "reason": "Test",
            "message": name,
            "count": 1,
            **times,
        },
        "status": {},
    }


def test_an_event_goes_once_its_last_occurrence_is_older_than_the_ttl(
    run_on_store: Callable[[Body], None],
) -> None:
    async def body(store: ResourceStore, ns: str) -> None:
        obj = await store.create(MS, ms(ns, "a"))
        events = EventRecorder(store, "test")
        await events.record(obj, "Started", "replica 0 started (pid 10)")
        retention = EventRetention(store, ttl=HOUR)
        assert await retention.sweep() == 0
        assert messages(await events_about(store, ns, "a")) == ["replica 0 started (pid 10)"]
        # An hour and a bit later (by the sweep's clock) it has expired.
        retention.clock = later(HOUR + 5)
        assert await retention.sweep() >= 1
        assert await events_about(store, ns, "a") == []

    run_on_store(body)


def test_the_ttl_counts_from_the_last_occurrence_not_the_first(
    run_on_store: Callable[[Body], None],
) -> None:
    async def body(store: ResourceStore, ns: str) -> None:
        obj = await store.create(MS, ms(ns, "a"))
        two_hours_ago, now = ago(2 * HOUR), ago(0)
        for event in (
            # First seen two hours ago but seen again now (its count went up): kept.
            event_at(obj, "again", firstTimestamp=two_hours_ago, lastTimestamp=now),
            event_at(obj, "old", firstTimestamp=two_hours_ago, lastTimestamp=two_hours_ago),
            event_at(obj, "first-only", firstTimestamp=two_hours_ago),
            # No timestamps of its own: its creation counts.
            event_at(obj, "created-now"),
        ):
            await store.create(EVENTS, event)
        await EventRetention(store, ttl=HOUR).sweep()
        assert messages(await events_about(store, ns, "a")) == ["again", "created-now"]

    run_on_store(body)


def test_a_crash_looping_replica_keeps_only_its_newest_events(
    run_on_store: Callable[[Body], None],
) -> None:
    async def body(store: ResourceStore, ns: str) -> None:
        looping = await store.create(MS, ms(ns, "looping"))
        calm = await store.create(MS, ms(ns, "calm"))
        events = EventRecorder(store, "test")
        for pid in range(100, 108):  # each start has a new pid, so a new Event
            await events.record(looping, "Started", f"replica 0 started (pid {pid})")
        await events.record(calm, "Started", "replica 0 started (pid 7)")
        await events.record(looping, "Started", "replica 0 started (pid 101)")  # count 2
        retention = EventRetention(store, per_object=3)
        assert await retention.sweep() == 5
        kept = await events_about(store, ns, "looping")
        # The newest by last occurrence: 106 and 107, and 101 which happened again.
        assert sorted(messages(kept)) == [
            "replica 0 started (pid 101)",
            "replica 0 started (pid 106)",
            "replica 0 started (pid 107)",
        ]
        assert messages(await events_about(store, ns, "calm")) == ["replica 0 started (pid 7)"]
        assert await retention.sweep() == 0

    run_on_store(body)


def test_the_events_of_a_deleted_object_go_with_it(
    run_on_store: Callable[[Body], None],
) -> None:
    async def body(store: ResourceStore, ns: str) -> None:
        events = EventRecorder(store, "test")
        gone = await store.create(MS, ms(ns, "gone"))
        await events.record(gone, "Started", "replica 0 started (pid 1)")
        stays = await store.create(MS, ms(ns, "stays"))
        await events.record(stays, "Started", "replica 0 started (pid 2)")
        remade = await store.create(MS, ms(ns, "remade"))
        await events.record(remade, "Started", "replica 0 started (pid 3)")
        await store.delete(MS, ns, "gone")
        await store.delete(MS, ns, "remade")
        # Made again under the same name: a new object (new uid), whose Events are its own.
        remade = await store.create(MS, ms(ns, "remade"))
        await events.record(remade, "Started", "replica 0 started (pid 4)")

        assert await EventRetention(store).sweep() == 2
        assert await events_about(store, ns, "gone") == []
        assert messages(await events_about(store, ns, "stays")) == ["replica 0 started (pid 2)"]
        assert messages(await events_about(store, ns, "remade")) == ["replica 0 started (pid 4)"]

    run_on_store(body)


class BumpsBeforeDelete:
    """A store through which the recorder writes an Event again just before the sweep
    deletes it: the sweep listed the older version."""

    def __init__(self, store: ResourceStore, obj: dict[str, Any]) -> None:
        self.store = store
        self.obj = obj

    def __getattr__(self, name: str) -> Any:
        return getattr(self.store, name)

    async def delete(self, resource: str, namespace: str, name: str, **kwargs: Any) -> Any:
        await EventRecorder(self.store, "test").record(self.obj, "Started", "started")
        return await self.store.delete(resource, namespace, name, **kwargs)


def test_an_event_recorded_again_while_the_sweep_runs_stays(
    run_on_store: Callable[[Body], None],
) -> None:
    async def body(store: ResourceStore, ns: str) -> None:
        obj = await store.create(MS, ms(ns, "a"))
        await EventRecorder(store, "test").record(obj, "Started", "started")
        racing: Any = BumpsBeforeDelete(store, obj)
        retention = EventRetention(racing, ttl=HOUR, clock=later(HOUR + 5))
        assert await retention.sweep() == 0
        [event] = await events_about(store, ns, "a")
        assert event["spec"]["count"] == 2

    run_on_store(body)


def test_an_event_deleted_under_the_recorder_is_recorded_afresh(tmp_path: Path) -> None:
    async def main() -> None:
        store = await SqliteStore.open(tmp_path / "db")
        try:
            obj = await store.create(MS, ms("default", "a"))
            events = EventRecorder(store, "test")
            await events.record(obj, "Started", "started")
            [event] = await events_about(store, "default", "a")
            real_update = store.update

            async def delete_first(resource: str, changed: dict[str, Any], **kw: Any) -> Any:
                # The sweep deletes it between the recorder's get and its update.
                await store.delete(EVENTS, "default", event["metadata"]["name"])
                return await real_update(resource, changed, **kw)

            store.update = delete_first  # type: ignore[method-assign]
            await events.record(obj, "Started", "started")
            store.update = real_update  # type: ignore[method-assign]
            [again] = await events_about(store, "default", "a")
            assert again["spec"]["count"] == 1
            assert again["metadata"]["uid"] != event["metadata"]["uid"]
        finally:
            await store.close()

    asyncio.run(main())


def test_a_backlog_of_more_than_a_batch_goes_in_one_sweep(tmp_path: Path) -> None:
    async def main() -> None:
        store = await SqliteStore.open(tmp_path / "db")
        try:
            obj = await store.create(MS, ms("default", "a"))
            events = EventRecorder(store, "test")
            for pid in range(BATCH + 10):
                await events.record(obj, "Started", f"replica 0 started (pid {pid})")
            retention = EventRetention(store, per_object=5)
            assert await retention.sweep() == BATCH + 5
            assert len(await events_about(store, "default", "a")) == 5
        finally:
            await store.close()

    asyncio.run(main())


def test_the_sweep_repeats_until_stopped(tmp_path: Path) -> None:
    async def main() -> None:
        store = await SqliteStore.open(tmp_path / "db")
        try:
            obj = await store.create(MS, ms("default", "a"))
            events = EventRecorder(store, "test")
            retention = EventRetention(store, ttl=HOUR, interval=0.05, clock=later(HOUR + 5))
            await retention.start()
            for pid in (1, 2):  # each is swept by a later pass of the same loop
                await events.record(obj, "Started", f"started (pid {pid})")
                deadline = time.monotonic() + 10
                while await events_about(store, "default", "a"):
                    assert time.monotonic() < deadline, "the sweep did not run again"
                    await asyncio.sleep(0.02)
            await retention.stop()
            assert not [t for t in asyncio.all_tasks() if t.get_name() == "event-retention"]
            await retention.stop()  # stopping twice is harmless
        finally:
            await store.close()

    asyncio.run(main())


# -- a real server ---------------------------------------------------------------------

NODE = "/apis/node.llmos.ai/v1"
TTL = 600  # seconds: the Events below are written with timestamps just inside it


def post_event(client: httpx.Client, obj: dict[str, Any], name: str, last: str) -> None:
    body = event_at(obj, name, firstTimestamp=last, lastTimestamp=last)
    response = client.post(f"{NODE}/namespaces/{obj['metadata']['namespace']}/events", json=body)
    assert response.status_code == 201, response.text


def listed(client: httpx.Client, namespace: str) -> dict[str, list[str]]:
    """What ``GET .../namespaces/NS/events`` shows: each object's Event names, sorted."""
    response = client.get(f"{NODE}/namespaces/{namespace}/events")
    assert response.status_code == 200, response.text
    result: dict[str, list[str]] = {}
    for event in response.json()["items"]:
        who = event["spec"]["involvedObject"]["name"]
        result.setdefault(who, []).append(event["metadata"]["name"])
    return {who: sorted(names) for who, names in result.items()}


def wait_listed(
    client: httpx.Client, namespace: str, want: dict[str, list[str]], timeout: float = 30
) -> None:
    deadline = time.monotonic() + timeout
    while (seen := listed(client, namespace)) != want:
        assert time.monotonic() < deadline, f"Events are {seen}, not {want}"
        time.sleep(0.1)


@pytest.mark.slow
def test_a_server_expires_caps_and_drops_the_events_of_deleted_objects(tmp_path: Path) -> None:
    ns = f"ev-{uuid.uuid4().hex[:6]}"
    options = ["--event-ttl-seconds", str(TTL), "--event-sweep-interval", "0.2"]
    with (
        admin_server(tmp_path / "data", *options, "--events-per-object", "3") as running,
        running.admin_client() as client,
    ):
        create_namespace(client, ns)
        looping = create_ms(client, ns, "looping")
        expiring = create_ms(client, ns, "expiring")
        doomed = create_ms(client, ns, "doomed")
        for age in (50, 40, 30, 20, 10):
            post_event(client, looping, f"start-{age}s-ago", ago(age))
        # Its last occurrence is a few seconds short of the TTL: listed now, gone soon.
        post_event(client, expiring, "nearly-expired", ago(TTL - 5))
        post_event(client, expiring, "recent", ago(1))
        post_event(client, doomed, "about-doomed", ago(1))
        assert "nearly-expired" in listed(client, ns).get("expiring", [])

        # The newest 3 of "looping" stay; an Event past the TTL is no longer listed.
        wait_listed(
            client,
            ns,
            {
                "looping": ["start-10s-ago", "start-20s-ago", "start-30s-ago"],
                "expiring": ["recent"],
                "doomed": ["about-doomed"],
            },
        )
        response = client.delete(ms_path(ns, "doomed"))
        assert response.status_code == 200, response.text
        wait_listed(
            client,
            ns,
            {
                "looping": ["start-10s-ago", "start-20s-ago", "start-30s-ago"],
                "expiring": ["recent"],
            },
        )
    # It stopped with 0 (admin_server checks), its sweep cancelled cleanly.
    assert "Traceback" not in running.log(), running.log()
