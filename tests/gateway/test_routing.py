"""The routing table on a real store and informer: the least loaded endpoint, in-flight counts
that outlive a status change, and a model no longer served taking its metrics with it; and
the same choice made between two real replicas."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client import CollectorRegistry, generate_latest

from factories import create_ms, modelservice, ms_path
from llmos.controllers.informer import Informer
from llmos.gateway.history import History
from llmos.gateway.table import RoutingTable
from llmos.gateway.usage import Usage
from llmos.store.sqlite.store import SqliteStore
from server import RunningServer
from workloads.helpers import wait_for

from .conftest import NEVER_STOP, wait_phase

MS = "modelservices.ml.llmos.ai"
A, B, C = "http://127.0.0.1:9001", "http://127.0.0.1:9002", "http://127.0.0.1:9003"


async def serving(store: SqliteStore, name: str, endpoints: list[str], **spec: Any) -> None:
    try:
        obj = await store.get(MS, "team", name)
    except Exception:
        obj = modelservice(name, **spec)
        obj["metadata"]["namespace"] = "team"
        obj = await store.create(MS, obj)
    obj["status"] = {"phase": "Ready", "endpoints": endpoints, "engine": "llama-cpp"}
    await store.update_status(MS, obj)


def with_table(
    tmp_path: Path, body: Callable[[SqliteStore, Informer, RoutingTable], Awaitable[None]]
) -> None:
    async def main() -> None:
        store = await SqliteStore.open(tmp_path / "db")
        informer = Informer(store, MS)
        table = RoutingTable(informer, authorizer=None)  # type: ignore[arg-type]
        await informer.start()
        try:
            await body(store, informer, table)
        finally:
            await informer.stop()
            await store.close()

    asyncio.run(main())


async def settled(store: SqliteStore, informer: Informer) -> None:
    await informer.wait_for(await store.current_revision())


def test_the_least_loaded_endpoint_and_counts_that_outlive_a_status_change(
    tmp_path: Path,
) -> None:
    async def body(store: SqliteStore, informer: Informer, table: RoutingTable) -> None:
        await serving(store, "chat", [A, B])
        await settled(store, informer)
        route = table._by_name["chat"][0]
        first = route.pick()
        first.outstanding += 1
        second = route.pick()
        assert second is not first  # the idle one
        second.outstanding += 2
        assert route.pick() is first  # 1 in flight against 2
        # A third replica turns ready: the two in flight keep their counts, the new one is
        # idle and takes the next request.
        await serving(store, "chat", [A, B, C])
        await settled(store, informer)
        route = table._by_name["chat"][0]
        counts = {e.url: e.outstanding for e in route.endpoints}
        assert counts == {first.url: 1, second.url: 2, C: 0}
        assert route.pick().url == C

    with_table(tmp_path, body)


def test_a_model_no_longer_served_takes_its_series_and_history(tmp_path: Path) -> None:
    registry = CollectorRegistry()
    usage = Usage(registry)
    history = History(usage, interval=10, points=3)
    gone: list[str] = []

    async def body(store: SqliteStore, informer: Informer, table: RoutingTable) -> None:
        for callback in (usage.forget, history.forget, gone.append):
            table.on_gone(callback)
        table.on_served(usage.served)
        await serving(store, "chat", [A])
        await serving(store, "other", [B])
        await settled(store, informer)
        for model in ("team/chat", "team/other"):
            usage.record(model, "alice", "key-1", 200, 0.5, 10, 20, 0.1)
            usage.record(model, "alice", "key-1", 429, 0.001, 0, 0)
        for now in range(5):  # more than the 3 points kept
            history.sample(1000.0 + 10 * now)
        assert len(history.series("team/chat")) == 3
        # Renamed: the old name's series go, and the new name has none yet.
        obj = await store.get(MS, "team", "chat")
        obj["spec"]["servedModelName"] = "chat-v2"
        await store.update(MS, obj)
        await settled(store, informer)
        assert gone == ["team/chat"]
        text = generate_latest(registry).decode()
        assert 'model="team/chat"' not in text
        assert 'model="team/other"' in text
        assert history.series("team/chat") == []
        assert len(history.series("team/other")) == 3
        # Deleted: the same. The per-key totals stay, as accounting.
        await store.delete(MS, "team", "other")
        await settled(store, informer)
        assert gone == ["team/chat", "team/other"]
        assert 'model="team/other"' not in generate_latest(registry).decode()
        assert {(r["model"], r["completionTokens"]) for r in usage.report()} == {
            ("team/chat", 20),
            ("team/other", 20),
        }
        # A request still in flight when its model went is accounted, and brings no series
        # back; served again, the name is counted again.
        usage.record("team/other", "alice", "key-1", 200, 0.5, 1, 1, 0.1)
        assert 'model="team/other"' not in generate_latest(registry).decode()
        assert "team/other" not in usage.models
        assert ("team/other", 32) in {(r["model"], r["totalTokens"]) for r in usage.report()}
        await serving(store, "other", [B])
        await settled(store, informer)
        usage.record("team/other", "alice", "key-1", 200, 0.5, 1, 1, 0.1)
        assert 'model="team/other"' in generate_latest(registry).decode()
        # A status change of a model still served forgets nothing.
        await serving(store, "chat", [A, C])
        await settled(store, informer)
        assert gone == ["team/chat", "team/other"]

    with_table(tmp_path, body)


@pytest.mark.slow
def test_a_busy_replica_is_passed_over_for_an_idle_one(
    model_server: RunningServer, gw_admin: httpx.Client
) -> None:
    """Two real llama.cpp replicas: while one writes a long answer, the others go to the
    other one, as each replica's own access log shows."""
    path = ms_path("default", "pair")
    create_ms(gw_admin, "default", "pair", replicas=2, engine="llama-cpp")
    try:
        wait_phase(gw_admin, path)
        wait_for(
            gw_admin,
            path,
            lambda ms: len(ms["status"].get("endpoints") or []) >= 2,
            "two ready endpoints",
            timeout=120,
        )

        def served() -> list[int]:
            """Chat completions each replica's engine has answered so far."""
            return [
                gw_admin.get(f"{path}/logs", params={"replica": replica}).text.count(
                    '"POST /v1/chat/completions HTTP/1.1" 200'
                )
                for replica in (0, 1)
            ]

        long = {
            "model": "pair",
            "messages": [{"role": "user", "content": "Write a long story."}],
            "max_tokens": 3000,
            "logit_bias": NEVER_STOP,
            "stream": True,
        }
        short = {"model": "pair", "messages": [{"role": "user", "content": "Hi"}], "max_tokens": 2}
        with gw_admin.stream("POST", "/v1/chat/completions", json=long, timeout=60) as busy:
            assert busy.status_code == 200
            lines = busy.iter_lines()  # kept: a generator that goes away closes the stream
            for line in lines:
                if '"content"' in line:
                    break
            # Whichever replica took the long answer is writing it now (its access line is
            # logged as the stream starts).
            during = served()
            assert sorted(during) == [0, 1], during
            for _ in range(4):
                reply = gw_admin.post("/v1/chat/completions", json=short, timeout=60)
                assert reply.status_code == 200, reply.text
            after = served()
            # The long answer went on meanwhile, and is still going.
            assert any('"content"' in line for line in lines)
        idle = during.index(0)
        assert after[idle] == 4 and after[1 - idle] == 1, after
    finally:
        gw_admin.delete(path)
