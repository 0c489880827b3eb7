"""The ResourceStore semantics of store/base.py, on every backend (SQLite and Kubernetes)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from llmos._lib.errors import LLMOSError, Reason
from llmos.store.selector import parse_selector

from .conftest import Backend

R = "modelservices.ml.llmos.ai"
NB = "notebooks.ml.llmos.ai"


def obj(namespace: str, name: str, **labels: str) -> dict[str, Any]:
    return {
        "apiVersion": "ml.llmos.ai/v1",
        "kind": "ModelService",
        "metadata": {"name": name, "namespace": namespace, "labels": labels},
        "spec": {"model": "x"},
        "status": {},
    }


async def fails(reason: Reason, call: Any) -> LLMOSError:
    with pytest.raises(LLMOSError) as info:
        await call
    assert info.value.reason == reason, info.value
    return info.value


def test_no_op_update_keeps_the_version(backend: Backend) -> None:
    async def body(store: Any) -> None:
        created = await store.create(R, obj(backend.namespace, "a"))
        same = await store.update(R, dict(created))
        assert same["metadata"]["resourceVersion"] == created["metadata"]["resourceVersion"]

    backend.run(body)


def test_generate_name_and_conflicting_create(backend: Backend) -> None:
    async def body(store: Any) -> None:
        template = obj(backend.namespace, "")
        template["metadata"]["generateName"] = "gen-"
        created = await store.create(R, template)
        assert created["metadata"]["name"].startswith("gen-")
        assert len(created["metadata"]["name"]) == len("gen-") + 5
        await store.create(R, obj(backend.namespace, "dup"))
        await fails(Reason.ALREADY_EXISTS, store.create(R, obj(backend.namespace, "dup")))

    backend.run(body)


def test_secrets_stay_out_of_objects_and_go_with_them(backend: Backend) -> None:
    async def body(store: Any) -> None:
        ns = backend.namespace
        await store.create(R, obj(ns, "s"), secret={"hash": "abc"})
        assert "abc" not in await store.get_raw(R, ns, "s")
        assert await store.get_secret(R, ns, "s") == {"hash": "abc"}
        current = await store.get(R, ns, "s")
        await store.update(R, current, secret={"hash": "def"})
        assert await store.get_secret(R, ns, "s") == {"hash": "def"}
        await store.delete(R, ns, "s")
        assert await store.get_secret(R, ns, "s") == {}
        await store.create(R, obj(ns, "s"))  # a new object of the same name has none
        assert await store.get_secret(R, ns, "s") == {}

    backend.run(body)


def test_generation_moves_only_with_spec_and_status_only_with_update_status(
    backend: Backend,
) -> None:
    async def body(store: Any) -> None:
        ns = backend.namespace
        created = await store.create(R, obj(ns, "g"))
        assert created["metadata"]["generation"] == 1
        created["metadata"]["labels"] = {"tier": "a"}
        created["status"] = {"phase": "Ignored"}
        relabelled = await store.update(R, created)
        assert relabelled["metadata"]["generation"] == 1
        assert relabelled.get("status", {}).get("phase") is None
        relabelled["spec"]["replicas"] = 2
        respecced = await store.update(R, relabelled)
        assert respecced["metadata"]["generation"] == 2
        respecced["status"] = {"phase": "Ready", "observedGeneration": 2}
        respecced["spec"]["replicas"] = 9  # update_status ignores spec
        statused = await store.update_status(R, respecced)
        assert statused["status"]["phase"] == "Ready"
        assert statused["spec"]["replicas"] == 2
        assert statused["metadata"]["generation"] == 2
        revisions = [int(o["metadata"]["resourceVersion"]) for o in (created, statused)]
        assert revisions == sorted(revisions)

    backend.run(body)


def test_stale_resource_version_conflicts(backend: Backend) -> None:
    async def body(store: Any) -> None:
        ns = backend.namespace
        first = await store.create(R, obj(ns, "c"))
        stale = dict(first, metadata=dict(first["metadata"]))
        first["spec"]["replicas"] = 2
        await store.update(R, first)
        stale["spec"] = {"model": "y"}
        await fails(Reason.CONFLICT, store.update(R, stale))
        await fails(Reason.CONFLICT, store.update_status(R, stale))
        version = stale["metadata"]["resourceVersion"]
        await fails(Reason.CONFLICT, store.delete(R, ns, "c", resource_version=version))
        unconditional = obj(ns, "c")  # no resourceVersion: last writer wins
        unconditional["spec"] = {"model": "z"}
        assert (await store.update(R, unconditional))["spec"] == {"model": "z"}
        await fails(Reason.NOT_FOUND, store.get(R, ns, "missing"))

    backend.run(body)


def test_label_selectors_and_paging(backend: Backend) -> None:
    async def body(store: Any) -> None:
        ns, other = backend.namespace, f"{backend.namespace}-b"
        for index in range(5):
            await store.create(R, obj(ns, f"p{index}", tier="a" if index % 2 else "b"))
        for index in range(3):
            await store.create(R, obj(other, f"q{index}", tier="a"))
        chosen = await store.list(R, ns, selector=parse_selector("tier=a"))
        assert [item["metadata"]["name"] for item in chosen.items] == ["p1", "p3"]
        names: list[str] = []
        token = None
        while True:
            page = await store.list(R, ns, limit=2, continue_token=token)
            names += [item["metadata"]["name"] for item in page.items]
            token = page.continue_token
            if token is None:
                break
        assert names == [f"p{index}" for index in range(5)]
        both: list[str] = []
        token = None
        while True:
            page = await store.list(R, namespaces=[other, ns], limit=3, continue_token=token)
            both += [f"{i['metadata']['namespace']}/{i['metadata']['name']}" for i in page.items]
            token = page.continue_token
            if token is None:
                break
        assert both == [f"{ns}/p{i}" for i in range(5)] + [f"{other}/q{i}" for i in range(3)]
        selected = await store.list(R, namespaces=[ns, other], selector=parse_selector("tier=a"))
        assert len(selected.items) == 5

    backend.run(body)


def test_watch_streams_changes_in_order_and_resumes(backend: Backend) -> None:
    async def body(store: Any) -> None:
        ns = backend.namespace
        start = (await store.list(R, ns)).resource_version
        stream = await store.watch(R, ns, resource_version=start)
        created = await store.create(R, obj(ns, "w1"))
        created["spec"]["replicas"] = 2
        await store.update(R, created)
        await store.delete(R, ns, "w1")
        events = [await asyncio.wait_for(anext(stream), 10) for _ in range(3)]
        await stream.aclose()
        assert [e.type for e in events] == ["ADDED", "MODIFIED", "DELETED"]
        assert [e.name for e in events] == ["w1"] * 3
        assert [e.rv for e in events] == sorted({e.rv for e in events})
        resumed = await store.watch(R, ns, resource_version=events[0].rv)
        again = [await asyncio.wait_for(anext(resumed), 10) for _ in range(2)]
        await resumed.aclose()
        assert [e.type for e in again] == ["MODIFIED", "DELETED"]

    backend.run(body)


def test_watch_without_version_lists_first(backend: Backend) -> None:
    async def body(store: Any) -> None:
        ns = backend.namespace
        await store.create(R, obj(ns, "existing"))
        stream = await store.watch(R, ns)
        first = await asyncio.wait_for(anext(stream), 10)
        await store.create(R, obj(ns, "later"))
        second = await asyncio.wait_for(anext(stream), 10)
        await stream.aclose()
        assert (first.type, first.name) == ("ADDED", "existing")
        assert (second.type, second.name) == ("ADDED", "later")

    backend.run(body)


def test_watch_label_selector_sees_objects_leave(backend: Backend) -> None:
    async def body(store: Any) -> None:
        ns = backend.namespace
        created = await store.create(R, obj(ns, "sel", app="x"))
        stream = await store.watch(
            R,
            ns,
            resource_version=int(created["metadata"]["resourceVersion"]),
            selector=parse_selector("app=x"),
        )
        created["metadata"]["labels"] = {"app": "y"}
        await store.update(R, created)
        event = await asyncio.wait_for(anext(stream), 10)
        await stream.aclose()
        assert (event.type, event.name) == ("DELETED", "sel")

    backend.run(body)


def test_watch_from_a_forgotten_revision_is_gone(backend: Backend) -> None:
    async def body(store: Any) -> None:
        await store.create(R, obj(backend.namespace, "old"))
        await store.create(R, obj(backend.namespace, "newer"))
        old = await backend.old_revision(store)

        async def first_event() -> None:
            stream = await store.watch(R, resource_version=old)
            try:
                await asyncio.wait_for(anext(stream), 10)
            finally:
                await stream.aclose()

        error = await fails(Reason.GONE, first_event())
        assert "too old" in error.message

    backend.run(body)


def test_finalizers_delay_deletion(backend: Backend) -> None:
    async def body(store: Any) -> None:
        ns = backend.namespace
        held = obj(ns, "held")
        held["metadata"]["finalizers"] = ["example.com/hold"]
        await store.create(R, held)
        marked = await store.delete(R, ns, "held")
        assert marked["metadata"].get("deletionTimestamp")
        still = await store.get(R, ns, "held")
        assert still["metadata"]["deletionTimestamp"]
        still["metadata"]["finalizers"] = []
        await store.update(R, still)
        await fails(Reason.NOT_FOUND, store.get(R, ns, "held"))

    backend.run(body)


def test_owner_reference_to_a_missing_owner_is_refused(backend: Backend) -> None:
    async def body(store: Any) -> None:
        owned = obj(backend.namespace, "orphan")
        owned["metadata"]["ownerReferences"] = [
            {"apiVersion": "ml.llmos.ai/v1", "kind": "ModelService", "name": "nobody", "uid": "u1"}
        ]
        await fails(Reason.INVALID, store.create(R, owned))

    backend.run(body)


def test_deleting_an_owner_cascades(backend: Backend, request: pytest.FixtureRequest) -> None:
    """SQLite cascades in the owner's transaction; Kubernetes' garbage collector shortly after."""
    if backend.name == "kube":
        request.getfixturevalue("kube_nodes")  # kube-controller-manager runs the collector

    async def body(store: Any) -> None:
        ns = backend.namespace
        owner = await store.create(R, obj(ns, "owner"))
        dependent = obj(ns, "dependent")
        dependent["kind"] = "Notebook"
        dependent["spec"] = {}
        dependent["metadata"]["ownerReferences"] = [
            {
                "apiVersion": "ml.llmos.ai/v1",
                "kind": "ModelService",
                "name": "owner",
                "uid": owner["metadata"]["uid"],
            }
        ]
        await store.create(NB, dependent)
        await store.delete(R, ns, "owner")
        deadline = asyncio.get_running_loop().time() + 60
        while True:
            try:
                await store.get(NB, ns, "dependent")
            except LLMOSError as exc:
                assert exc.reason == Reason.NOT_FOUND
                return
            assert asyncio.get_running_loop().time() < deadline, "the dependent outlived its owner"
            await asyncio.sleep(0.1)

    backend.run(body)


def test_a_create_keeps_the_status_it_was_given(backend: Backend) -> None:
    """Agents register objects with their status (a Node's capacity, a GPU's inventory)."""

    async def body(store: Any) -> None:
        given = obj(backend.namespace, "with-status")
        given["status"] = {"phase": "Ready", "message": "registered"}
        created = await store.create(R, given)
        assert created["status"] == {"phase": "Ready", "message": "registered"}
        got = await store.get(R, backend.namespace, "with-status")
        assert got["status"] == {"phase": "Ready", "message": "registered"}
        assert got["metadata"]["resourceVersion"] == created["metadata"]["resourceVersion"]

    backend.run(body)
