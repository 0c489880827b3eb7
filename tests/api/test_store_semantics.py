"""Store semantics as a client sees them over HTTPS: versions, watch, finalizers, cascade."""

from __future__ import annotations

import time
import uuid

import httpx

from factories import create_ev, create_namespace, ev_path, event
from server import RunningServer, start_server
from watching import WatchReader


def _ns(admin: httpx.Client) -> str:
    name = f"t-{uuid.uuid4().hex[:8]}"
    create_namespace(admin, name)
    return name


def test_generation_moves_only_with_spec(admin: httpx.Client) -> None:
    ns = _ns(admin)
    obj = create_ev(admin, ns, "gen")
    assert obj["metadata"]["generation"] == 1
    rv1 = int(obj["metadata"]["resourceVersion"])

    obj["metadata"]["labels"] = {"team": "a"}
    obj = admin.put(ev_path(ns, "gen"), json=obj).json()
    assert obj["metadata"]["generation"] == 1
    assert int(obj["metadata"]["resourceVersion"]) > rv1

    obj["spec"]["count"] = 3
    obj = admin.put(ev_path(ns, "gen"), json=obj).json()
    assert obj["metadata"]["generation"] == 2

    status = {**obj, "status": {"phase": "Pending", "message": "waiting"}}
    saved = admin.put(ev_path(ns, "gen") + "/status", json=status).json()
    assert saved["status"]["phase"] == "Pending"
    assert saved["metadata"]["generation"] == 2

    # The main resource ignores status; the status subresource ignores spec.
    saved["status"] = {"phase": "Hacked"}
    saved["spec"]["count"] = 4
    again = admin.put(ev_path(ns, "gen"), json=saved).json()
    assert again["status"]["phase"] == "Pending"
    assert again["spec"]["count"] == 4


def test_stale_resource_version_conflicts(admin: httpx.Client) -> None:
    ns = _ns(admin)
    first = create_ev(admin, ns, "race")
    winner = {**first, "spec": {**first["spec"], "count": 2}}
    assert admin.put(ev_path(ns, "race"), json=winner).status_code == 200
    loser = {**first, "spec": {**first["spec"], "count": 5}}
    response = admin.put(ev_path(ns, "race"), json=loser)
    assert response.status_code == 409
    body = response.json()
    assert body["kind"] == "Status" and body["reason"] == "Conflict"
    assert "modified since you read it" in body["message"]
    assert admin.get(ev_path(ns, "race")).json()["spec"]["count"] == 2


def test_merge_patch_updates_fields(admin: httpx.Client) -> None:
    ns = _ns(admin)
    create_ev(admin, ns, "patchy", labels={"a": "1", "b": "2"})
    response = admin.patch(
        ev_path(ns, "patchy"),
        content=b'{"metadata":{"labels":{"b":null,"c":"3"}},"spec":{"count":2}}',
        headers={"Content-Type": "application/merge-patch+json"},
    )
    assert response.status_code == 200, response.text
    obj = response.json()
    assert obj["metadata"]["labels"] == {"a": "1", "c": "3"}
    assert obj["spec"]["count"] == 2
    assert obj["spec"]["reason"] == "Test"


def test_label_selectors_and_paging(admin: httpx.Client) -> None:
    ns = _ns(admin)
    for index in range(25):
        create_ev(admin, ns, f"m{index:02d}", labels={"tier": "a" if index % 2 else "b"})
    seen: list[str] = []
    params: dict[str, str] = {"limit": "10"}
    pages = 0
    while True:
        page = admin.get(ev_path(ns), params=params).json()
        pages += 1
        seen += [item["metadata"]["name"] for item in page["items"]]
        token = page["metadata"].get("continue")
        if not token:
            break
        params = {"limit": "10", "continue": token}
    assert pages == 3
    assert seen == [f"m{i:02d}" for i in range(25)]

    odd = admin.get(ev_path(ns), params={"labelSelector": "tier=a"}).json()["items"]
    assert len(odd) == 12 and all(o["metadata"]["labels"]["tier"] == "a" for o in odd)
    both = admin.get(ev_path(ns), params={"labelSelector": "tier in (a,b),!missing"}).json()
    assert len(both["items"]) == 25
    none = admin.get(ev_path(ns), params={"labelSelector": "tier!=a,tier!=b"}).json()
    assert none["items"] == []


def test_watch_streams_changes_in_order(admin: httpx.Client) -> None:
    ns = _ns(admin)
    start = admin.get(ev_path(ns)).json()["metadata"]["resourceVersion"]
    watch = WatchReader(admin, ev_path(ns), resourceVersion=start)
    try:
        obj = create_ev(admin, ns, "w1")
        obj["spec"]["count"] = 2
        admin.put(ev_path(ns, "w1"), json=obj).raise_for_status()
        admin.delete(ev_path(ns, "w1")).raise_for_status()
        events = [watch.next() for _ in range(3)]
    finally:
        watch.close()
    assert [e["type"] for e in events] == ["ADDED", "MODIFIED", "DELETED"]
    assert all(e["object"]["metadata"]["name"] == "w1" for e in events)
    versions = [int(e["object"]["metadata"]["resourceVersion"]) for e in events]
    assert versions == sorted(versions) and len(set(versions)) == 3


def test_watch_without_version_lists_first(admin: httpx.Client) -> None:
    ns = _ns(admin)
    create_ev(admin, ns, "existing")
    watch = WatchReader(admin, ev_path(ns))
    try:
        first = watch.next()
        create_ev(admin, ns, "later")
        second = watch.next()
    finally:
        watch.close()
    assert (first["type"], first["object"]["metadata"]["name"]) == ("ADDED", "existing")
    assert (second["type"], second["object"]["metadata"]["name"]) == ("ADDED", "later")


def test_watch_resumes_after_a_dropped_connection(admin: httpx.Client) -> None:
    ns = _ns(admin)
    start = admin.get(ev_path(ns)).json()["metadata"]["resourceVersion"]
    watch = WatchReader(admin, ev_path(ns), resourceVersion=start)
    create_ev(admin, ns, "r1")
    last = watch.next()
    watch.close()  # the connection drops
    create_ev(admin, ns, "r2")
    create_ev(admin, ns, "r3")
    resumed = WatchReader(
        admin, ev_path(ns), resourceVersion=last["object"]["metadata"]["resourceVersion"]
    )
    try:
        names = [resumed.next()["object"]["metadata"]["name"] for _ in range(2)]
    finally:
        resumed.close()
    assert names == ["r2", "r3"]


def test_watch_label_selector_sees_objects_leave(admin: httpx.Client) -> None:
    ns = _ns(admin)
    obj = create_ev(admin, ns, "sel", labels={"app": "x"})
    start = obj["metadata"]["resourceVersion"]
    watch = WatchReader(admin, ev_path(ns), resourceVersion=start, labelSelector="app=x")
    try:
        obj["metadata"]["labels"] = {"app": "y"}
        admin.put(ev_path(ns, "sel"), json=obj).raise_for_status()
        event = watch.next()
    finally:
        watch.close()
    assert event["type"] == "DELETED"


def test_watch_from_a_compacted_version_is_gone(tmp_path) -> None:  # type: ignore[no-untyped-def]
    running = start_server(
        tmp_path / "data", "--watch-history-seconds", "0", "--watch-compact-interval", "0.2"
    )
    try:
        token = running.setup_admin()
        with running.client(token) as admin:
            create_ev(admin, "default", "old")
            create_ev(admin, "default", "newer")
            deadline = time.monotonic() + 10
            status = None
            while time.monotonic() < deadline:
                response = admin.get(
                    ev_path("default"),
                    params={"watch": "true", "resourceVersion": "1", "timeoutSeconds": "1"},
                )
                status = response.status_code
                if status == 410:
                    break
                time.sleep(0.1)
            assert status == 410
            body = response.json()
            assert body["reason"] == "Gone" and "too old" in body["message"]
    finally:
        assert running.stop() == 0


def test_watch_from_a_version_not_reached_yet_is_refused(admin: httpx.Client) -> None:
    """One from another server, or from before the data was reset: refused at once, not a
    watch that waits forever and shows nothing."""
    obj = create_ev(admin, "default", "now")
    ahead = int(obj["metadata"]["resourceVersion"]) + 1_000_000
    response = admin.get(
        ev_path("default"), params={"watch": "true", "resourceVersion": str(ahead)}
    )
    assert response.status_code == 400, response.text
    body = response.json()
    assert body["message"].startswith(f"resourceVersion {ahead} is newer than this server's")
    assert body["details"]["causes"][0]["reason"] == "ResourceVersionTooLarge"


def test_finalizers_delay_deletion(admin: httpx.Client) -> None:
    ns = _ns(admin)
    body = event("held")
    body["metadata"]["finalizers"] = ["example.com/hold"]
    assert admin.post(ev_path(ns), json=body).status_code == 201
    deleted = admin.delete(ev_path(ns, "held"))
    assert deleted.status_code == 200
    assert deleted.json()["metadata"]["deletionTimestamp"]
    still = admin.get(ev_path(ns, "held"))
    assert still.status_code == 200 and still.json()["metadata"]["deletionTimestamp"]
    released = admin.patch(
        ev_path(ns, "held"),
        content=b'{"metadata":{"finalizers":[]}}',
        headers={"Content-Type": "application/merge-patch+json"},
    )
    assert released.status_code == 200
    assert admin.get(ev_path(ns, "held")).status_code == 404


def test_deleting_an_owner_cascades(admin: httpx.Client) -> None:
    ns = _ns(admin)
    owner = create_ev(admin, ns, "owner")
    ref = {
        "apiVersion": "node.llmos.ai/v1",
        "kind": "Event",
        "name": "owner",
        "uid": owner["metadata"]["uid"],
    }
    child = event("child")
    child["metadata"]["ownerReferences"] = [ref]
    assert admin.post(ev_path(ns), json=child).status_code == 201
    grandchild = {
        **child,
        "metadata": {
            "name": "grandchild",
            "ownerReferences": [
                {
                    **ref,
                    "name": "child",
                    "uid": admin.get(ev_path(ns, "child")).json()["metadata"]["uid"],
                }
            ],
        },
    }
    assert admin.post(ev_path(ns), json=grandchild).status_code == 201
    assert admin.delete(ev_path(ns, "owner")).status_code == 200
    for name in ("owner", "child", "grandchild"):
        assert admin.get(ev_path(ns, name)).status_code == 404


def test_owner_reference_to_a_missing_owner_is_refused(admin: httpx.Client) -> None:
    ns = _ns(admin)
    body = event("orphan")
    body["metadata"]["ownerReferences"] = [
        {"apiVersion": "v1", "kind": "Event", "name": "x", "uid": str(uuid.uuid4())}
    ]
    response = admin.post(ev_path(ns), json=body)
    assert response.status_code == 422
    assert response.json()["details"]["causes"][0]["field"] == "metadata.ownerReferences[0].uid"
    assert admin.get(ev_path(ns, "orphan")).status_code == 404


def test_deleting_a_namespace_deletes_its_content(admin: httpx.Client) -> None:
    ns = _ns(admin)
    create_ev(admin, ns, "inside")
    assert admin.delete(f"/apis/management.llmos.ai/v1/namespaces/{ns}").status_code == 200
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if admin.get(f"/apis/management.llmos.ai/v1/namespaces/{ns}").status_code == 404:
            break
        time.sleep(0.05)
    assert admin.get(f"/apis/management.llmos.ai/v1/namespaces/{ns}").status_code == 404
    assert admin.get(ev_path(ns, "inside")).status_code == 404
    refused = admin.post(ev_path(ns), json=event("late"))
    assert refused.status_code == 404


def test_reserved_namespaces_cannot_be_deleted(admin: httpx.Client) -> None:
    for name in ("default", "llmos-public", "llmos-system"):
        response = admin.delete(f"/apis/management.llmos.ai/v1/namespaces/{name}")
        assert response.status_code == 403
        assert "reserved" in response.json()["message"]


def test_server_survives_restart_with_state(fresh_server: RunningServer) -> None:
    token = fresh_server.setup_admin()
    with fresh_server.client(token) as admin:
        create_ev(admin, "default", "kept")
    assert fresh_server.stop() == 0
    fresh_server.start()
    token = fresh_server.login("admin", "admin-password-123")
    with fresh_server.client(token) as admin:
        assert admin.get(ev_path("default", "kept")).status_code == 200
