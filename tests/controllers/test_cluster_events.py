"""Cluster mode's Events: each thing that happened to a pod is told once, across server starts."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from llmos._lib.errors import LLMOSError, Reason
from llmos.controllers.cluster import ClusterReconciler
from llmos.controllers.events import EVENTS, EventRecorder
from llmos.controllers.loop import ObjectKey
from llmos.runtime.base import ChangeHandler, Happening, Observed
from llmos.store.sqlite.store import SqliteStore

MODELSERVICES = "modelservices.ml.llmos.ai"


class Pods:
    """A stand-in for the Kubernetes runtime: what its pods are said to have done."""

    def __init__(self) -> None:
        self.happenings: list[Happening] = []

    async def start(self) -> None: ...

    async def stop(self) -> None: ...

    async def apply(self, obj: dict[str, Any], *, hf_token: str | None = None) -> None: ...

    async def observe(self, obj: dict[str, Any]) -> Observed:
        return Observed("Starting", "starting", replicas=1, happenings=list(self.happenings))

    def on_change(self, handler: ChangeHandler) -> None: ...

    async def logs(self, obj: dict[str, Any], *args: Any, **kwargs: Any) -> AsyncIterator[str]:
        raise NotImplementedError("no logs here")


async def _demo(store: SqliteStore) -> ObjectKey:
    """A ModelService to tell Events of."""
    await store.create(
        MODELSERVICES,
        {
            "apiVersion": "ml.llmos.ai/v1",
            "kind": "ModelService",
            "metadata": {"name": "demo", "namespace": "default"},
            "spec": {"model": "bundled:smollm2"},
        },
    )
    return ObjectKey("default", "demo")


def test_a_new_leader_does_not_tell_again_what_the_old_one_told(tmp_path: Path) -> None:
    async def main() -> None:
        store = await SqliteStore.open(tmp_path / "db")
        try:
            pods, key = Pods(), await _demo(store)
            pods.happenings = [
                Happening("p1/scheduled", "Scheduled", "replica 0 (demo-0) on node a"),
                Happening("p1/started/0", "Started", "replica 0 started on a"),
            ]

            async def counts() -> dict[str, int]:
                items = (await store.list(EVENTS, "default")).items
                return {e["spec"]["reason"]: e["spec"]["count"] for e in items}

            old = ClusterReconciler("ModelService", store, pods, EventRecorder(store, "old"))
            await old.reconcile(key)
            await old.reconcile(key)
            assert await counts() == {"Scheduled": 1, "Started": 1}

            # The leader changes: the new one sees the same pods, and one more thing.
            new = ClusterReconciler("ModelService", store, pods, EventRecorder(store, "new"))
            pods.happenings.append(
                Happening("p1/backoff/1", "BackOff", "replica 0 exited", "Warning")
            )
            await new.reconcile(key)
            await new.reconcile(key)
            assert await counts() == {"Scheduled": 1, "Started": 1, "BackOff": 1}

            # A restart seen by the same leader with the same words is counted again.
            pods.happenings.append(Happening("p1/started/1", "Started", "replica 0 started on a"))
            await new.reconcile(key)
            assert await counts() == {"Scheduled": 1, "Started": 2, "BackOff": 1}
        finally:
            await store.close()

    asyncio.run(main())


def test_a_failed_look_for_earlier_events_is_tried_again(tmp_path: Path) -> None:
    async def main() -> None:
        store = await SqliteStore.open(tmp_path / "db")
        try:
            pods, key = Pods(), await _demo(store)
            pods.happenings = [Happening("p1/started/0", "Started", "replica 0 started on a")]
            await ClusterReconciler(
                "ModelService", store, pods, EventRecorder(store, "old")
            ).reconcile(key)

            recorder = EventRecorder(store, "new")
            real_exists, calls = recorder.exists, []

            async def flaky_exists(obj: dict[str, Any], reason: str, message: str) -> bool:
                calls.append(reason)
                if len(calls) == 1:
                    raise LLMOSError("the API server is busy", Reason.SERVICE_UNAVAILABLE)
                return await real_exists(obj, reason, message)

            recorder.exists = flaky_exists  # type: ignore[method-assign]
            new = ClusterReconciler("ModelService", store, pods, recorder)
            with pytest.raises(LLMOSError):
                await new.reconcile(key)
            await new.reconcile(key)  # looked for again, found: not told twice
            items = (await store.list(EVENTS, "default")).items
            assert [(e["spec"]["reason"], e["spec"]["count"]) for e in items] == [("Started", 1)]
            assert calls == ["Started", "Started"]
        finally:
            await store.close()

    asyncio.run(main())
