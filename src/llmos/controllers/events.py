"""EventRecorder: writes Kubernetes-style Events that explain what happened to an object.

Repeats of the same reason and message on the same object bump ``count`` on
one Event instead of piling up new ones. Events do not stay forever:
``event_retention.EventRetention`` deletes them (by default) an hour after
they last happened, when their object goes, and beyond the newest 100 of one
object.
"""

from __future__ import annotations

import hashlib
import logging
from typing import Any

from llmos._lib import timefmt
from llmos._lib.errors import LLMOSError, Reason
from llmos.store.base import ResourceStore

log = logging.getLogger(__name__)
EVENTS = "events.node.llmos.ai"


class EventRecorder:
    def __init__(self, store: ResourceStore, source: str) -> None:
        self.store = store
        self.source = source

    async def exists(self, obj: dict[str, Any], reason: str, message: str) -> bool:
        """Whether this reason and message were recorded for ``obj`` already (by any server)."""
        namespace, name = _event_key(obj, reason, message)
        try:
            await self.store.get(EVENTS, namespace, name)
        except LLMOSError as exc:
            if exc.reason == Reason.NOT_FOUND:
                return False
            raise
        return True

    async def record(
        self, obj: dict[str, Any], reason: str, message: str, type_: str = "Normal"
    ) -> None:
        meta = obj["metadata"]
        namespace, name = _event_key(obj, reason, message)
        now = timefmt.rfc3339()
        try:
            existing = await self.store.get(EVENTS, namespace, name)
            existing["spec"]["count"] = int(existing["spec"].get("count", 1)) + 1
            existing["spec"]["lastTimestamp"] = now
            await self.store.update(EVENTS, existing)
            return
        except LLMOSError as exc:
            # NotFound: new, or deleted since the get (EventRetention): record it afresh.
            if exc.reason != Reason.NOT_FOUND:
                log.warning("could not update event %s: %s", name, exc)
                return
        event = {
            "apiVersion": "node.llmos.ai/v1",
            "kind": "Event",
            "metadata": {"name": name, "namespace": namespace, "labels": {}, "annotations": {}},
            "spec": {
                "involvedObject": {
                    "apiVersion": obj.get("apiVersion", ""),
                    "kind": obj.get("kind", ""),
                    "name": meta["name"],
                    "namespace": meta.get("namespace"),
                    "uid": meta.get("uid"),
                },
                "reason": reason,
                "message": message,
                "type": type_,
                "count": 1,
                "firstTimestamp": now,
                "lastTimestamp": now,
                "source": self.source,
            },
            "status": {},
        }
        try:
            await self.store.create(EVENTS, event)
        except LLMOSError as exc:
            log.warning("could not record event %s: %s", name, exc)


def _event_key(obj: dict[str, Any], reason: str, message: str) -> tuple[str, str]:
    """The namespace and name of the one Event for this reason and message on ``obj``."""
    meta = obj["metadata"]
    digest = hashlib.sha1(f"{meta.get('uid')}/{reason}/{message}".encode()).hexdigest()[:10]
    return meta.get("namespace") or "default", f"{meta['name']}.{digest}"
