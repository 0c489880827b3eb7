"""In-process fan-out of committed changes to watchers.

Each watcher has a bounded queue. A watcher that falls too far behind is cut
off with Gone rather than slowing writers down; it resumes from the last
revision it saw, which the history still holds.
"""

from __future__ import annotations

import asyncio
from collections.abc import Collection
from dataclasses import dataclass, field, replace

from llmos.store.base import WatchEvent
from llmos.store.selector import Selector

QUEUE_SIZE = 10_000


@dataclass(eq=False)
class Subscription:
    resource: str
    namespace: str | None
    namespaces: frozenset[str] | None
    selector: Selector | None
    queue: asyncio.Queue[WatchEvent | None] = field(
        default_factory=lambda: asyncio.Queue(QUEUE_SIZE)
    )
    overflowed: bool = False

    def translate(self, event: WatchEvent) -> WatchEvent | None:
        """Return the event as this watcher should see it, or None to skip it."""
        if event.resource != self.resource:
            return None
        if self.namespace is not None and event.namespace != self.namespace:
            return None
        if self.namespaces is not None and event.namespace not in self.namespaces:
            return None
        if not self.selector:
            return event
        now = self.selector.matches(event.labels)
        before = event.prev_labels is not None and self.selector.matches(event.prev_labels)
        if event.type == "MODIFIED":
            if now and not before:
                return replace(event, type="ADDED")
            if before and not now:
                return replace(event, type="DELETED")
        return event if now else None


class Hub:
    def __init__(self) -> None:
        self._subs: set[Subscription] = set()
        self.last_published = 0

    def subscribe(
        self,
        resource: str,
        namespace: str | None,
        namespaces: Collection[str] | None,
        selector: Selector | None,
    ) -> Subscription:
        sub = Subscription(
            resource, namespace, None if namespaces is None else frozenset(namespaces), selector
        )
        self._subs.add(sub)
        return sub

    def unsubscribe(self, sub: Subscription) -> None:
        self._subs.discard(sub)

    def publish(self, events: list[WatchEvent]) -> None:
        if events:
            self.last_published = max(self.last_published, events[-1].rv)
        for sub in list(self._subs):
            for event in events:
                seen = sub.translate(event)
                if seen is None:
                    continue
                try:
                    sub.queue.put_nowait(seen)
                except asyncio.QueueFull:
                    sub.overflowed = True
                    self._subs.discard(sub)
                    break

    def close(self) -> None:
        for sub in self._subs:
            sub.queue._queue.clear()  # type: ignore[attr-defined]
            sub.queue.put_nowait(None)
        self._subs.clear()
