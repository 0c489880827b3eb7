"""An informer: an in-memory copy of one kind, kept current by a watch.

Readers (RBAC decisions, token checks, the gateway's routing table) look
objects up in memory instead of asking the store on every request.
:meth:`Informer.wait_for` lets a writer read its own write: it returns once
the informer has seen a given revision.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from typing import Any

from llmos._lib.errors import LLMOSError, Reason
from llmos.store.base import ResourceStore, WatchEvent

log = logging.getLogger(__name__)

Handler = Callable[[WatchEvent], None]


class Informer:
    def __init__(self, store: ResourceStore, resource: str) -> None:
        self.store = store
        self.resource = resource
        self.objects: dict[tuple[str, str], dict[str, Any]] = {}
        self.revision = 0
        self._handlers: list[Handler] = []
        self._task: asyncio.Task[None] | None = None
        self._synced = asyncio.Event()
        self._progress = asyncio.Condition()

    def on_change(self, handler: Handler) -> None:
        self._handlers.append(handler)

    def get(self, name: str, namespace: str = "") -> dict[str, Any] | None:
        return self.objects.get((namespace, name))

    def values(self) -> list[dict[str, Any]]:
        return list(self.objects.values())

    async def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name=f"informer-{self.resource}")
        await self._synced.wait()

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def wait_for(self, revision: int, timeout: float = 2.0) -> None:
        """Wait until this informer has applied every change up to ``revision``."""
        if self.revision >= revision:
            return
        async with self._progress:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(
                    self._progress.wait_for(lambda: self.revision >= revision), timeout
                )

    async def _relist(self) -> None:
        page = await self.store.list(self.resource)
        fresh: dict[tuple[str, str], dict[str, Any]] = {}
        for obj in page.items:
            meta = obj["metadata"]
            fresh[(meta.get("namespace") or "", meta["name"])] = obj
        self.objects = fresh
        await self._advance(page.resource_version)

    async def _advance(self, revision: int) -> None:
        self.revision = max(self.revision, revision)
        async with self._progress:
            self._progress.notify_all()

    async def _run(self) -> None:
        failures = 0
        while True:
            try:
                await self._relist()
                self._synced.set()
                stream = await self.store.watch(self.resource, resource_version=self.revision)
                async for event in stream:
                    failures = 0
                    self._apply(event)
                    await self._advance(event.rv)
            except LLMOSError as exc:
                if exc.reason != Reason.GONE:
                    log.warning("informer %s: %s", self.resource, exc)
            except Exception:
                log.exception("informer %s failed; relisting", self.resource)
            failures += 1
            await asyncio.sleep(min(0.05 * 2**failures, 5.0))

    def _apply(self, event: WatchEvent) -> None:
        key = (event.namespace, event.name)
        if event.type == "DELETED":
            self.objects.pop(key, None)
        else:
            self.objects[key] = event.object
        for handler in self._handlers:
            try:
                handler(event)
            except Exception:
                log.exception("informer %s: change handler failed", self.resource)
