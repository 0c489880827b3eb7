"""SqliteStore: the embedded ResourceStore, on one SQLite file in WAL mode.

Writes run on a single writer thread (see ``writes``); reads run on a small
pool of reader threads, each with its own connection, so a long list never
waits behind a write. Watchers are fed from the in-process ``Hub``.
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
import threading
from collections.abc import AsyncIterator, Callable, Collection, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

import orjson

from llmos.resources.registry import KIND_REGISTRY
from llmos.store import errors
from llmos.store.base import ObjectList, WatchEvent
from llmos.store.hub import Hub, Subscription
from llmos.store.selector import Selector
from llmos.store.sqlite import reads
from llmos.store.sqlite.schema import connect, create_schema
from llmos.store.sqlite.writes import Writer

log = logging.getLogger(__name__)
T = TypeVar("T")


def _kind_of(resource: str) -> str:
    info = KIND_REGISTRY.by_resource(resource)
    return info.kind if info else resource


def _added(resource: str, raw: str) -> WatchEvent:
    meta = orjson.loads(raw)["metadata"]
    return WatchEvent(
        "ADDED",
        resource,
        meta.get("namespace") or "",
        meta["name"],
        int(meta["resourceVersion"]),
        raw,
        meta.get("labels") or {},
    )


class SqliteStore:
    """The embedded ResourceStore. Create with :meth:`open`; stop with :meth:`close`."""

    def __init__(
        self,
        path: Path,
        *,
        history_seconds: float = 300.0,
        history_max_events: int = 100_000,
        compact_interval: float = 30.0,
    ) -> None:
        self.path = path
        self._history_seconds = history_seconds
        self._history_max = history_max_events
        self._compact_interval = compact_interval
        self._hub = Hub()
        self._writer_pool = ThreadPoolExecutor(1, thread_name_prefix="store-writer")
        self._reader_pool = ThreadPoolExecutor(2, thread_name_prefix="store-reader")
        self._local = threading.local()
        self._readers: list[sqlite3.Connection] = []
        self._writer: Writer | None = None
        self._write_conn: sqlite3.Connection | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._compactor: asyncio.Task[None] | None = None

    @classmethod
    async def open(cls, path: Path, **options: Any) -> SqliteStore:
        store = cls(path, **options)
        store._loop = asyncio.get_running_loop()
        await store._in_writer(store._open_writer)
        store._compactor = asyncio.create_task(store._compact_forever(), name="store-compactor")
        return store

    def _open_writer(self) -> None:
        self._write_conn = connect(self.path)
        create_schema(self._write_conn)
        self._writer = Writer(self._write_conn, self._publish_threadsafe, _kind_of)

    def _publish_threadsafe(self, events: list[WatchEvent]) -> None:
        assert self._loop is not None
        self._loop.call_soon_threadsafe(self._hub.publish, events)

    async def _in_writer(self, fn: Callable[..., T], *args: Any) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._writer_pool, fn, *args)

    def _reader(self) -> sqlite3.Connection:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            conn = connect(self.path, readonly=True)
            self._local.conn = conn
            self._readers.append(conn)
        return conn

    async def _in_reader(self, fn: Callable[..., T], *args: Any) -> T:
        def call() -> T:
            return fn(self._reader(), *args)

        return await asyncio.get_running_loop().run_in_executor(self._reader_pool, call)

    @property
    def _w(self) -> Writer:
        if self._writer is None:
            raise RuntimeError("the store is closed")
        return self._writer

    # -- the ResourceStore interface -------------------------------------------

    async def create(
        self, resource: str, obj: dict[str, Any], *, secret: dict[str, Any] | None = None
    ) -> dict[str, Any]:
        return await self._in_writer(self._w.create, resource, obj, secret)

    async def get(self, resource: str, namespace: str, name: str) -> dict[str, Any]:
        raw = await self.get_raw(resource, namespace, name)
        return dict(orjson.loads(raw))

    async def get_raw(self, resource: str, namespace: str, name: str) -> str:
        raw = await self._in_reader(reads.get, resource, namespace, name)
        if raw is None:
            raise errors.not_found(_kind_of(resource), name, namespace)
        return raw

    async def list(
        self,
        resource: str,
        namespace: str | None = None,
        *,
        selector: Selector | None = None,
        limit: int | None = None,
        continue_token: str | None = None,
        namespaces: Collection[str] | None = None,
    ) -> ObjectList:
        return await self._in_reader(
            reads.list_objects, resource, namespace, selector, limit, continue_token, namespaces
        )

    async def update(
        self, resource: str, obj: dict[str, Any], *, secret: dict[str, Any] | None = None
    ) -> dict[str, Any]:
        return await self._in_writer(self._w.update, resource, obj, secret, False)

    async def update_status(self, resource: str, obj: dict[str, Any]) -> dict[str, Any]:
        return await self._in_writer(self._w.update, resource, obj, None, True)

    async def delete(
        self,
        resource: str,
        namespace: str,
        name: str,
        *,
        resource_version: str | None = None,
    ) -> dict[str, Any]:
        return await self._in_writer(self._w.delete, resource, namespace, name, resource_version)

    async def get_secret(self, resource: str, namespace: str, name: str) -> dict[str, Any]:
        raw = await self._in_reader(reads.get_secret, resource, namespace, name)
        return {} if raw is None else dict(orjson.loads(raw))

    async def current_revision(self) -> int:
        return await self._in_reader(reads.revision)

    async def watch(
        self,
        resource: str,
        namespace: str | None = None,
        *,
        resource_version: int | None = None,
        selector: Selector | None = None,
        namespaces: Collection[str] | None = None,
        bookmark_interval: float | None = None,
    ) -> AsyncIterator[WatchEvent]:
        # Subscribe before reading state, so no change falls between the two.
        sub = self._hub.subscribe(resource, namespace, namespaces, selector)
        try:
            if resource_version is None:
                page = await self.list(
                    resource, namespace, selector=selector, namespaces=namespaces
                )
                backlog = [_added(resource, raw) for raw in page.raw_items]
                seen = page.resource_version
            else:
                compacted, latest, history = await self._in_reader(
                    reads.events_after, resource, resource_version, namespace, namespaces
                )
                if resource_version < compacted:
                    raise errors.gone(resource_version, compacted)
                if resource_version > latest:
                    raise errors.too_new(resource_version, latest)
                backlog = [e for e in map(sub.translate, history) if e is not None]
                seen = max([resource_version, *(e.rv for e in history)])
        except BaseException:
            self._hub.unsubscribe(sub)
            raise
        return self._stream(sub, backlog, seen, bookmark_interval)

    async def _stream(
        self,
        sub: Subscription,
        backlog: Sequence[WatchEvent],
        seen: int,
        bookmark_interval: float | None,
    ) -> AsyncIterator[WatchEvent]:
        try:
            for event in backlog:
                yield event
            while True:
                try:
                    live = await asyncio.wait_for(sub.queue.get(), bookmark_interval)
                except TimeoutError:
                    # Every change up to the hub's last publication has been delivered.
                    mark = max(seen, self._hub.last_published)
                    yield WatchEvent("BOOKMARK", sub.resource, "", "", mark, "{}")
                    continue
                if live is None:
                    return
                if live.rv <= seen:
                    continue
                seen = live.rv
                yield live
                if sub.overflowed and sub.queue.empty():
                    # Cut off for falling behind: end the stream; the client resumes
                    # from the last revision it saw, which the history still holds.
                    return
        finally:
            self._hub.unsubscribe(sub)

    async def compact(self) -> int:
        """Trim the watch history now (the store also does this on a timer)."""
        return await self._in_writer(self._w.compact, self._history_seconds, self._history_max)

    async def _compact_forever(self) -> None:
        while True:
            await asyncio.sleep(self._compact_interval)
            try:
                await self.compact()
            except sqlite3.Error:
                log.exception("compacting the watch history failed; will retry")

    async def integrity_check(self) -> str:
        def check(conn: sqlite3.Connection) -> str:
            return str(conn.execute("PRAGMA integrity_check").fetchone()[0])

        return await self._in_reader(check)

    async def close(self) -> None:
        if self._compactor is not None:
            self._compactor.cancel()
        self._hub.close()

        def close_writer() -> None:
            if self._write_conn is not None:
                self._write_conn.close()
            self._writer = None

        await self._in_writer(close_writer)
        self._writer_pool.shutdown(wait=True)
        self._reader_pool.shutdown(wait=True)
        for conn in self._readers:
            conn.close()
