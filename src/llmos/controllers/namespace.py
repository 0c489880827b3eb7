"""NamespaceReconciler: keeps a namespace Active, and empties it before it goes.

A namespace carries the ``llmos.ai/namespace-content`` finalizer. When it is
deleted, every namespaced object in it is deleted; the finalizer comes off
once none is left, and then the namespace itself is gone.
"""

from __future__ import annotations

from typing import Any

from llmos.controllers.events import EventRecorder
from llmos.controllers.loop import ObjectKey
from llmos.resources.registry import KIND_REGISTRY, Registry
from llmos.store.base import ResourceStore

NAMESPACES = "namespaces.management.llmos.ai"
FINALIZER = "llmos.ai/namespace-content"


class NamespaceReconciler:
    resource = NAMESPACES

    def __init__(
        self, store: ResourceStore, events: EventRecorder, registry: Registry = KIND_REGISTRY
    ) -> None:
        self.store = store
        self.events = events
        self.registry = registry

    async def reconcile(self, key: ObjectKey) -> float | None:
        ns = await self.store.get(NAMESPACES, "", key.name)
        meta = ns["metadata"]
        if not meta.get("deletionTimestamp"):
            await self._set_phase(ns, "Active")
            return None
        await self._set_phase(ns, "Terminating")
        remaining = 0
        for info in self.registry.kinds:
            if not info.namespaced:
                continue
            page = await self.store.list(info.resource, key.name)
            for obj in page.items:
                remaining += 1
                if not obj["metadata"].get("deletionTimestamp"):
                    await self.store.delete(info.resource, key.name, obj["metadata"]["name"])
        if remaining:
            return 0.5  # objects with finalizers of their own are still going
        ns = await self.store.get(NAMESPACES, "", key.name)
        ns["metadata"]["finalizers"] = [f for f in ns["metadata"]["finalizers"] if f != FINALIZER]
        await self.store.update(NAMESPACES, ns)
        return None

    async def _set_phase(self, ns: dict[str, Any], phase: str) -> None:
        status = ns.setdefault("status", {})
        if status.get("phase") != phase:
            status["phase"] = phase
            await self.store.update_status(NAMESPACES, ns)
