"""EventRetention: deletes expired Events, Events of deleted objects, and an object's surplus.

LLMOS's Events (``events.node.llmos.ai``, written by :class:`~llmos.controllers.events.
EventRecorder`) are ordinary objects in the store: rows in SQLite in embedded mode,
custom resources in etcd in cluster mode. No API server expires them the way
kube-apiserver's ``--event-ttl`` expires core Kubernetes Events, so this sweep does.
Every ``interval`` seconds it lists the Events a page at a time and deletes:

- each Event whose last occurrence (``lastTimestamp``, else ``firstTimestamp``, else
  its creation) is older than ``ttl`` (``--event-ttl-seconds``, 1 hour as in Kubernetes);
- every Event of an involved object that is gone: there is no object of that kind and
  name, or there is one with another uid (deleted and made again);
- an object's Events beyond its newest ``per_object`` (``--events-per-object``), so a
  replica that crash-loops (a new "started (pid N)" Event at each start) cannot fill
  the store within the TTL.

Each delete is a transaction of its own, and the sweep pauses after every
:data:`BATCH` of them, so it never holds the store for long. A delete names the
resourceVersion the sweep listed: an Event the recorder bumped meanwhile is left
(Conflict) and judged again at the next sweep. Events about kinds LLMOS does not
know are left to the TTL.

The server hands it to the controllers' ``Manager`` (``Manager.run_alongside``), so it
runs where the controllers run: this server in embedded mode, the leader replica in
cluster mode; the Manager stops it with them.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from llmos._lib import timefmt
from llmos._lib.errors import LLMOSError, Reason
from llmos._lib.tasks import Periodic
from llmos.controllers.events import EVENTS
from llmos.resources.registry import KIND_REGISTRY, Registry
from llmos.store.base import ResourceStore, list_all

__all__ = ["BATCH", "EventRetention"]

log = logging.getLogger(__name__)

PAGE = 500  # Events listed per request
BATCH = 100  # deletes between two pauses
PAUSE = 0.05  # seconds: other writers get the store to themselves meanwhile


@dataclass(frozen=True)
class _Involved:
    """Whom an Event is about: the Events of one such object are counted together."""

    api_version: str
    kind: str
    namespace: str
    name: str
    uid: str | None


@dataclass(frozen=True)
class _Listed:
    """What the sweep keeps of one listed Event."""

    namespace: str
    name: str
    resource_version: str
    last: float | None  # seconds since the epoch; None if no timestamp parses
    involved: _Involved

    @property
    def newest_first(self) -> tuple[float, int]:
        rv = self.resource_version
        return (-(self.last or 0.0), -(int(rv) if rv.isdigit() else 0))


class EventRetention:
    """Deletes Events past ``ttl``, of gone objects, or beyond ``per_object`` per object."""

    def __init__(
        self,
        store: ResourceStore,
        *,
        ttl: float = 3600.0,
        interval: float = 60.0,
        per_object: int = 100,
        registry: Registry = KIND_REGISTRY,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.store = store
        self.ttl = ttl
        self.per_object = per_object
        self.registry = registry
        self.clock = clock
        self._rounds = Periodic(self._sweep, interval, "sweeping old Events", now=True, log=log)

    async def start(self) -> None:
        """Sweep now, then every ``interval`` seconds, until :meth:`stop`."""
        await self._rounds.start()

    async def stop(self) -> None:
        await self._rounds.stop()

    async def sweep(self) -> int:
        """One pass: delete what is due now. Returns how many Events it deleted."""
        listed = await self._list()
        cutoff = self.clock() - self.ttl
        doomed: list[_Listed] = []
        by_object: dict[_Involved, list[_Listed]] = defaultdict(list)
        for event in listed:
            if event.last is not None and event.last < cutoff:
                doomed.append(event)
            else:
                by_object[event.involved].append(event)
        for involved, events in by_object.items():
            if not await self._exists(involved):
                doomed.extend(events)
                continue
            events.sort(key=lambda event: event.newest_first)
            doomed.extend(events[self.per_object :])
        return await self._delete(doomed)

    async def _sweep(self) -> None:
        deleted = await self.sweep()
        if deleted:
            log.debug("deleted %d Events", deleted)

    async def _list(self) -> list[_Listed]:
        return [_listed(item) async for item in list_all(self.store, EVENTS, page=PAGE)]

    async def _exists(self, involved: _Involved) -> bool:
        """Whether the involved object is still there (unknown kinds count as there)."""
        info = self.registry.by_kind(involved.kind)
        if info is None or (involved.api_version and involved.api_version != info.api_version):
            return True
        namespace = involved.namespace if info.namespaced else ""
        try:
            obj = await self.store.get(info.resource, namespace, involved.name)
        except LLMOSError as exc:
            if exc.reason == Reason.NOT_FOUND:
                return False
            raise
        return involved.uid is None or obj["metadata"].get("uid") == involved.uid

    async def _delete(self, doomed: list[_Listed]) -> int:
        deleted = 0
        for index, event in enumerate(doomed, start=1):
            try:
                await self.store.delete(
                    EVENTS, event.namespace, event.name, resource_version=event.resource_version
                )
                deleted += 1
            except LLMOSError as exc:
                # Gone already, or recorded again since the list: the next sweep judges it.
                if exc.reason not in (Reason.NOT_FOUND, Reason.CONFLICT):
                    raise
            if index % BATCH == 0:
                await asyncio.sleep(PAUSE)
        return deleted


def _listed(event: dict[str, Any]) -> _Listed:
    meta = event["metadata"]
    spec = event.get("spec") or {}
    ref = spec.get("involvedObject") or {}
    namespace = meta.get("namespace") or ""
    last = None
    for text in (
        spec.get("lastTimestamp"),
        spec.get("firstTimestamp"),
        meta.get("creationTimestamp"),
    ):
        last = timefmt.seconds_or_none(text)
        if last is not None:
            break
    involved = _Involved(
        api_version=str(ref.get("apiVersion") or ""),
        kind=str(ref.get("kind") or ""),
        namespace=str(ref.get("namespace") or namespace),
        name=str(ref.get("name") or ""),
        uid=ref.get("uid") or None,
    )
    return _Listed(namespace, meta["name"], str(meta.get("resourceVersion") or ""), last, involved)
