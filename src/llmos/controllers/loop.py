"""The controller loop: watch a kind, queue keys, reconcile each with one worker.

A :class:`Reconciler` names the resource it owns and implements ``reconcile``.
The :class:`Controller` keeps a watch open (re-listing after Gone), feeds keys
to a :class:`~llmos.controllers.queue.WorkQueue`, resyncs every key on a timer,
and on failure requeues with backoff and writes a ``Reconciled`` condition.
Reconcilers read current state from the store; they never act on the event.
A reconciler may also name ``related`` kinds: a change to one of those queues
the keys its mapper returns (e.g. the ModelServices that use a changed Secret).
Changes of status alone are a reconciler's own writes and queue nothing, except
for the part its optional ``woken_by(obj)`` returns, which others write (the
proxy waking a culled notebook). The :class:`Manager` starts and stops the
controllers together, with the ``Background`` work that runs beside them.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import Any, Protocol

import orjson

from llmos._lib.errors import LLMOSError, Reason
from llmos.controllers.errors import PermanentError, TemporaryError
from llmos.controllers.queue import ShutDown, WorkQueue
from llmos.resources.meta import set_condition
from llmos.store.base import ResourceStore, WatchEvent

log = logging.getLogger(__name__)


@dataclass(frozen=True, order=True)
class ObjectKey:
    namespace: str
    name: str

    def __str__(self) -> str:
        return f"{self.namespace}/{self.name}" if self.namespace else self.name


# Maps a change of a related kind to the keys of the owned kind to reconcile.
Related = Callable[[WatchEvent], Awaitable[Iterable[ObjectKey]]]


class Reconciler(Protocol):
    """One kind's business logic. ``reconcile`` must be idempotent."""

    resource: str

    async def reconcile(self, key: ObjectKey) -> float | None:
        """Make the world match the object at ``key``; return seconds to requeue after."""


class Controller:
    def __init__(
        self,
        store: ResourceStore,
        reconciler: Reconciler,
        *,
        workers: int = 2,
        resync_seconds: float = 300.0,
        base_delay: float = 0.05,
        max_delay: float = 120.0,
    ) -> None:
        self.store = store
        self.reconciler = reconciler
        self.resource = reconciler.resource
        self.queue: WorkQueue[ObjectKey] = WorkQueue(base_delay, max_delay)
        self._workers = workers
        self._resync = resync_seconds
        self._tasks: list[asyncio.Task[None]] = []
        self._fingerprints: dict[ObjectKey, bytes] = {}
        self.reconcile_errors = 0
        self.reconciles = 0

    @property
    def name(self) -> str:
        return type(self.reconciler).__name__

    async def start(self) -> None:
        self._tasks.append(asyncio.create_task(self._watch_forever(), name=f"{self.name}-watch"))
        self._tasks.append(asyncio.create_task(self._resync_forever(), name=f"{self.name}-resync"))
        related: dict[str, Related] = getattr(self.reconciler, "related", None) or {}
        for resource, mapper in related.items():
            self._tasks.append(
                asyncio.create_task(
                    self._watch_related(resource, mapper), name=f"{self.name}-watch-{resource}"
                )
            )
        for index in range(self._workers):
            self._tasks.append(
                asyncio.create_task(self._work_forever(), name=f"{self.name}-worker-{index}")
            )

    async def stop(self) -> None:
        await self.queue.shutdown()
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self._tasks.clear()
        # A reconciler's own background work, if it has any, ends with the controller.
        close = getattr(self.reconciler, "close", None)
        if close is not None:
            await close()

    def enqueue(self, event: WatchEvent) -> None:
        """Queue the event's key, unless only its status changed (our own writes).

        What the reconciler's ``woken_by`` picks from the object counts as a change too.
        """
        key = ObjectKey(event.namespace, event.name)
        if event.type == "DELETED":
            self._fingerprints.pop(key, None)
            self.queue.add(key)
            return
        obj = event.object
        meta = dict(obj.get("metadata") or {})
        meta.pop("resourceVersion", None)
        woken_by = getattr(self.reconciler, "woken_by", None)
        also = woken_by(obj) if woken_by is not None else None
        fingerprint = orjson.dumps([meta, obj.get("spec"), also], option=orjson.OPT_SORT_KEYS)
        if self._fingerprints.get(key) == fingerprint:
            return
        self._fingerprints[key] = fingerprint
        self.queue.add(key)

    async def _watch_forever(self) -> None:
        revision: int | None = None
        failures = 0
        while True:
            try:
                stream = await self.store.watch(self.resource, resource_version=revision)
                async for event in stream:
                    revision = event.rv
                    failures = 0
                    self.enqueue(event)
            except LLMOSError as exc:
                if exc.reason == Reason.GONE:
                    revision = None  # re-list: the history we wanted is gone
                else:
                    log.warning("%s: watch failed: %s", self.name, exc)
            except Exception:
                log.exception("%s: watch failed", self.name)
            failures += 1
            await asyncio.sleep(min(0.1 * 2**failures, 10.0))

    async def _watch_related(self, resource: str, mapper: Related) -> None:
        """Queue the owned keys a change of ``resource`` maps to; changes from now on only."""
        revision: int | None = None
        failures = 0
        while True:
            try:
                if revision is None:
                    revision = await self.store.current_revision()
                stream = await self.store.watch(resource, resource_version=revision)
                async for event in stream:
                    revision = event.rv
                    failures = 0
                    for key in await mapper(event):
                        self.queue.add(key)
            except LLMOSError as exc:
                if exc.reason == Reason.GONE:
                    revision = None  # missed changes are caught by the periodic resync
                else:
                    log.warning("%s: watch of %s failed: %s", self.name, resource, exc)
            except Exception:
                log.exception("%s: watch of %s failed", self.name, resource)
            failures += 1
            await asyncio.sleep(min(0.1 * 2**failures, 10.0))

    async def _resync_forever(self) -> None:
        while True:
            await asyncio.sleep(self._resync)
            try:
                page = await self.store.list(self.resource)
            except Exception:
                log.exception("%s: resync list failed", self.name)
                continue
            for obj in page.items:
                meta = obj["metadata"]
                self.queue.add(ObjectKey(meta.get("namespace") or "", meta["name"]))

    async def _work_forever(self) -> None:
        while True:
            try:
                key = await self.queue.get()
            except ShutDown:
                return
            try:
                await self._reconcile_one(key)
            finally:
                self.queue.done(key)

    async def _reconcile_one(self, key: ObjectKey) -> None:
        self.reconciles += 1
        try:
            requeue = await self.reconciler.reconcile(key)
        except asyncio.CancelledError:
            raise
        except PermanentError as exc:
            self.reconcile_errors += 1
            self.queue.forget(key)
            log.warning("%s %s: %s (not retried until it changes)", self.name, key, exc)
            await self._report(key, str(exc))
            return
        except TemporaryError as exc:
            self.reconcile_errors += 1
            delay = exc.retry_after
            if delay is None:
                delay = self.queue.add_rate_limited(key)
            else:
                self.queue.add_after(key, delay)
            log.info("%s %s: %s (retry in %.1fs)", self.name, key, exc, delay)
            await self._report(key, str(exc))
            return
        except LLMOSError as exc:
            if exc.reason == Reason.NOT_FOUND:
                self.queue.forget(key)
                return
            self.reconcile_errors += 1
            delay = self.queue.add_rate_limited(key)
            log.warning("%s %s: %s (retry in %.1fs)", self.name, key, exc, delay)
            await self._report(key, str(exc))
            return
        except Exception as exc:
            self.reconcile_errors += 1
            delay = self.queue.add_rate_limited(key)
            log.exception("%s %s: reconcile failed (retry in %.1fs)", self.name, key, delay)
            await self._report(key, f"internal error: {exc}")
            return
        had_failures = self.queue.failures(key) > 0
        self.queue.forget(key)
        if had_failures:
            await self._report(key, None)
        if requeue is not None:
            self.queue.add_after(key, requeue)

    async def _report(self, key: ObjectKey, message: str | None) -> None:
        """Write the outcome to the object's ``Reconciled`` condition."""
        try:
            obj: dict[str, Any] = await self.store.get(self.resource, key.namespace, key.name)
            status = obj.setdefault("status", {})
            ok = message is None
            reason = "Succeeded" if ok else "ReconcileError"
            if set_condition(status, "Reconciled", ok, reason, message or ""):
                await self.store.update_status(self.resource, obj)
        except LLMOSError:
            pass  # gone or changed meanwhile: the next reconcile reports again


class Background(Protocol):
    """Work that runs where the controllers run (e.g. ``EventRetention``'s sweep)."""

    async def start(self) -> None: ...

    async def stop(self) -> None:
        """End it; :meth:`start` may be called again after."""


class Manager:
    """Owns every controller, and the background work beside them: starts them together
    and stops them together (on the leader replica only, in cluster mode)."""

    def __init__(self) -> None:
        self.controllers: list[Controller] = []
        self.background: list[Background] = []

    def add(self, controller: Controller) -> Controller:
        self.controllers.append(controller)
        return controller

    def run_alongside(self, work: Background) -> None:
        self.background.append(work)

    async def start(self) -> None:
        for controller in self.controllers:
            await controller.start()
        for work in self.background:
            await work.start()

    async def stop(self) -> None:
        await asyncio.gather(
            *(c.stop() for c in self.controllers), *(w.stop() for w in self.background)
        )
