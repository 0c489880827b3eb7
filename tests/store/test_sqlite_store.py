"""The SQLite store used directly: what only it does (semantics both backends share are in
test_semantics.py)."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from llmos.store.sqlite.store import SqliteStore

R = "modelservices.ml.llmos.ai"


def obj(name: str, **labels: str) -> dict[str, Any]:
    return {
        "apiVersion": "ml.llmos.ai/v1",
        "kind": "ModelService",
        "metadata": {"name": name, "namespace": "default", "labels": labels},
        "spec": {"model": "x"},
        "status": {},
    }


def test_watch_bookmarks_carry_the_delivered_revision(tmp_path: Path) -> None:
    async def main() -> None:
        store = await SqliteStore.open(tmp_path / "db")
        try:
            await store.create(R, obj("first"))
            stream = await store.watch(R, resource_version=0, bookmark_interval=0.05)
            added = await anext(stream)
            other = "notebooks.ml.llmos.ai"
            note = obj("nb")
            note["kind"] = "Notebook"
            await store.create(other, note)
            bookmark = await asyncio.wait_for(anext(stream), 2)
            assert added.type == "ADDED"
            assert bookmark.type == "BOOKMARK"
            assert bookmark.rv == await store.current_revision()
            await stream.aclose()  # type: ignore[attr-defined]
        finally:
            await store.close()

    asyncio.run(main())


def test_a_slow_watcher_is_cut_off_not_the_writers(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from llmos.store import hub

    monkeypatch.setattr(hub, "QUEUE_SIZE", 5)

    async def main() -> list[str]:
        store = await SqliteStore.open(tmp_path / "db")
        try:
            stream = await store.watch(R, resource_version=0)
            for index in range(20):
                await store.create(R, obj(f"o{index}"))
            await asyncio.sleep(0.05)
            return [event.name async for event in stream]
        finally:
            await store.close()

    names = asyncio.run(main())
    assert names == [f"o{i}" for i in range(len(names))]
    assert 0 < len(names) < 20
