"""The ResourceStore interface: what the API and controllers may ask of storage.

Two backends implement it: ``sqlite`` (embedded mode) and, later, ``kube``
(CRDs in a cluster's etcd). Objects cross this boundary as JSON-able dicts in
the Kubernetes shape; a *resource* is the ``plural.group`` key of a kind, such
as ``modelservices.ml.llmos.ai``. Namespaces are ``""`` for cluster-scoped kinds.

Semantics every backend keeps (Kubernetes'):
- ``resourceVersion`` is a cluster-wide, increasing revision; an update that
  names a stale one fails with Conflict.
- only a change of ``spec`` bumps ``metadata.generation``; ``update_status``
  touches ``status`` alone.
- a delete of an object with finalizers only sets ``deletionTimestamp``; the
  object goes when its last finalizer is removed, and then its dependents
  (objects whose ``ownerReferences`` name it) are deleted too.
- ``watch`` yields every change after a resourceVersion, in order, and raises
  Gone when that revision is older than the history kept.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Collection
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

import orjson

from llmos.store.selector import Selector

EventType = Literal["ADDED", "MODIFIED", "DELETED", "BOOKMARK"]


@dataclass(frozen=True)
class WatchEvent:
    type: EventType
    resource: str
    namespace: str
    name: str
    rv: int
    raw: str  # the object's JSON, as stored
    labels: dict[str, str] = field(default_factory=dict)
    prev_labels: dict[str, str] | None = None

    @property
    def object(self) -> dict[str, Any]:
        result: dict[str, Any] = orjson.loads(self.raw)
        return result


@dataclass(frozen=True)
class ObjectList:
    """A page of objects. ``raw_items`` are the stored JSON texts, ready to send."""

    raw_items: list[str]
    resource_version: int
    continue_token: str | None = None
    remaining: int | None = None
    _parsed: list[dict[str, Any]] = field(default_factory=list, repr=False)

    @property
    def items(self) -> list[dict[str, Any]]:
        if not self._parsed and self.raw_items:
            self._parsed.extend(orjson.loads(raw) for raw in self.raw_items)
        return self._parsed


class ResourceStore(Protocol):
    """Storage of LLMOS objects with Kubernetes semantics."""

    async def create(
        self, resource: str, obj: dict[str, Any], *, secret: dict[str, Any] | None = None
    ) -> dict[str, Any]:
        """Store a new object; fills uid, resourceVersion, generation and timestamps."""

    async def get(self, resource: str, namespace: str, name: str) -> dict[str, Any]:
        """Return one object, or raise NotFound."""

    async def get_raw(self, resource: str, namespace: str, name: str) -> str:
        """Return one object's JSON text as stored (no parse, for responses)."""

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
        """Return objects ordered by namespace and name, one page at a time."""

    async def update(
        self, resource: str, obj: dict[str, Any], *, secret: dict[str, Any] | None = None
    ) -> dict[str, Any]:
        """Replace metadata and spec; keeps status. Honors metadata.resourceVersion."""

    async def update_status(self, resource: str, obj: dict[str, Any]) -> dict[str, Any]:
        """Replace status alone. Honors metadata.resourceVersion."""

    async def delete(
        self,
        resource: str,
        namespace: str,
        name: str,
        *,
        resource_version: str | None = None,
    ) -> dict[str, Any]:
        """Delete, or mark for deletion while finalizers remain; returns the last state."""

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
        """Start a watch: changes after ``resource_version`` (or ADDED for all, when None).

        Raises Gone at once when the revision is too old, before any event. With
        ``bookmark_interval``, a quiet stream yields BOOKMARK events carrying a
        revision up to which every change has been delivered.
        """

    async def get_secret(self, resource: str, namespace: str, name: str) -> dict[str, Any]:
        """Return the secret data kept beside an object (password or token hashes)."""

    async def current_revision(self) -> int:
        """The latest resourceVersion written."""

    async def close(self) -> None:
        """Stop background work and release the database."""


async def list_all(
    store: ResourceStore, resource: str, *, page: int = 500
) -> AsyncIterator[dict[str, Any]]:
    """Every object of ``resource`` in every namespace, listed ``page`` at a time."""
    token: str | None = None
    while True:
        listed = await store.list(resource, limit=page, continue_token=token)
        for item in listed.items:
            yield item
        token = listed.continue_token
        if not token:
            return
