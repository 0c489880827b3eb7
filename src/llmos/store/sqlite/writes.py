"""Write operations of the SQLite store. They all run on one writer thread.

One thread owns the write connection, so each operation is a short
``BEGIN IMMEDIATE … COMMIT`` with no lock to take, and revisions are handed out
in commit order. After commit the changes go to the watch hub, in that order.
"""

from __future__ import annotations

import sqlite3
import time
import uuid
from collections.abc import Callable
from typing import Any

import orjson

from llmos._lib import timefmt
from llmos._lib.errors import Cause, LLMOSError, Reason
from llmos._lib.names import random_suffix
from llmos.store import errors
from llmos.store.base import EventType, WatchEvent

_MUTABLE_META = ("labels", "annotations", "finalizers", "ownerReferences")
_MAPS = ("labels", "annotations")


def _dumps(value: Any) -> str:
    return orjson.dumps(value).decode()


class Writer:
    """Applies creates, updates and deletes with Kubernetes semantics."""

    def __init__(
        self,
        conn: sqlite3.Connection,
        publish: Callable[[list[WatchEvent]], None],
        kind_of: Callable[[str], str],
    ) -> None:
        self._conn = conn
        self._publish = publish
        self._kind_of = kind_of
        (self.rv,) = conn.execute("SELECT value FROM meta WHERE key = 'rv'").fetchone()
        self._events: list[WatchEvent] = []

    # -- transaction plumbing -------------------------------------------------

    def _transaction(self, work: Callable[[], dict[str, Any]]) -> dict[str, Any]:
        start_rv = self.rv
        self._events = []
        self._conn.execute("BEGIN IMMEDIATE")
        try:
            result = work()
            if self.rv != start_rv:
                self._conn.execute("UPDATE meta SET value = ? WHERE key = 'rv'", (self.rv,))
            self._conn.execute("COMMIT")
        except BaseException:
            self._conn.execute("ROLLBACK")
            self.rv = start_rv
            self._events = []
            raise
        events, self._events = self._events, []
        if events:
            self._publish(events)
        return result

    def _record(
        self,
        type_: EventType,
        resource: str,
        obj: dict[str, Any],
        prev_labels: dict[str, str] | None = None,
    ) -> str:
        meta = obj["metadata"]
        raw = _dumps(obj)
        labels = meta.get("labels") or {}
        self._conn.execute(
            "INSERT INTO events (rv, ts, resource, namespace, name, type, labels, prev_labels,"
            " data) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                self.rv,
                time.time(),
                resource,
                meta.get("namespace") or "",
                meta["name"],
                type_,
                _dumps(labels),
                None if prev_labels is None else _dumps(prev_labels),
                raw,
            ),
        )
        self._events.append(
            WatchEvent(
                type_,
                resource,
                meta.get("namespace") or "",
                meta["name"],
                self.rv,
                raw,
                labels,
                prev_labels,
            )
        )
        return raw

    def _next_rv(self, obj: dict[str, Any]) -> None:
        self.rv += 1
        obj["metadata"]["resourceVersion"] = str(self.rv)

    def _fetch(self, resource: str, namespace: str, name: str) -> dict[str, Any] | None:
        row = self._conn.execute(
            "SELECT data FROM objects WHERE resource = ? AND namespace = ? AND name = ?",
            (resource, namespace, name),
        ).fetchone()
        return None if row is None else dict(orjson.loads(row[0]))

    def _store(self, resource: str, obj: dict[str, Any], raw: str) -> None:
        meta = obj["metadata"]
        self._conn.execute(
            "INSERT OR REPLACE INTO objects (resource, namespace, name, uid, rv, labels, data)"
            " VALUES (?, ?, ?, ?, ?, ?, ?)",
            (
                resource,
                meta.get("namespace") or "",
                meta["name"],
                meta["uid"],
                self.rv,
                _dumps(meta.get("labels") or {}),
                raw,
            ),
        )

    def _index_owners(self, obj: dict[str, Any]) -> None:
        uid = obj["metadata"]["uid"]
        self._conn.execute("DELETE FROM owner_refs WHERE dependent_uid = ?", (uid,))
        for ref in obj["metadata"].get("ownerReferences") or []:
            self._conn.execute(
                "INSERT OR IGNORE INTO owner_refs (owner_uid, dependent_uid) VALUES (?, ?)",
                (ref["uid"], uid),
            )

    def _check_owners(self, obj: dict[str, Any]) -> None:
        for index, ref in enumerate(obj["metadata"].get("ownerReferences") or []):
            row = self._conn.execute(
                "SELECT 1 FROM objects WHERE uid = ?", (ref["uid"],)
            ).fetchone()
            if row is None:
                field = f"metadata.ownerReferences[{index}].uid"
                raise LLMOSError(
                    f"{field}: owner {ref.get('kind')} {ref.get('name')!r} with uid "
                    f"{ref['uid']} does not exist",
                    Reason.INVALID,
                    causes=[Cause(field, "owner not found")],
                )

    def _put_secret(self, uid: str, secret: dict[str, Any] | None) -> None:
        if secret is not None:
            self._conn.execute(
                "INSERT OR REPLACE INTO secrets (uid, data) VALUES (?, ?)", (uid, _dumps(secret))
            )

    # -- operations -----------------------------------------------------------

    def create(
        self, resource: str, obj: dict[str, Any], secret: dict[str, Any] | None
    ) -> dict[str, Any]:
        def work() -> dict[str, Any]:
            meta = obj.setdefault("metadata", {})
            namespace = meta.get("namespace") or ""
            if not meta.get("name"):
                for _ in range(16):
                    candidate = f"{meta['generateName']}{random_suffix()}"
                    if self._fetch(resource, namespace, candidate) is None:
                        meta["name"] = candidate
                        break
                else:  # pragma: no cover - 36^5 names make this unreachable in practice
                    raise errors.already_exists(self._kind_of(resource), meta["generateName"])
            elif self._fetch(resource, namespace, meta["name"]) is not None:
                raise errors.already_exists(self._kind_of(resource), meta["name"], namespace)
            self._check_owners(obj)
            meta["uid"] = str(uuid.uuid4())
            meta["generation"] = 1
            meta["creationTimestamp"] = timefmt.rfc3339()
            meta.pop("deletionTimestamp", None)
            self._next_rv(obj)
            raw = self._record("ADDED", resource, obj)
            self._store(resource, obj, raw)
            self._index_owners(obj)
            self._put_secret(meta["uid"], secret)
            return obj

        return self._transaction(work)

    def _current(self, resource: str, obj: dict[str, Any]) -> dict[str, Any]:
        meta = obj.get("metadata") or {}
        namespace, name = meta.get("namespace") or "", meta.get("name") or ""
        current = self._fetch(resource, namespace, name)
        if current is None:
            raise errors.not_found(self._kind_of(resource), name, namespace)
        sent = meta.get("resourceVersion")
        if sent and sent != current["metadata"]["resourceVersion"]:
            raise errors.conflict(
                self._kind_of(resource), name, sent, current["metadata"]["resourceVersion"]
            )
        return current

    def update(
        self,
        resource: str,
        obj: dict[str, Any],
        secret: dict[str, Any] | None,
        status_only: bool,
    ) -> dict[str, Any]:
        def work() -> dict[str, Any]:
            current = self._current(resource, obj)
            meta = current["metadata"]
            new = dict(current)
            new["metadata"] = dict(meta)
            if status_only:
                new["status"] = obj.get("status") or {}
            else:
                sent = obj.get("metadata") or {}
                for key in _MUTABLE_META:
                    empty: dict[str, Any] | list[Any] = {} if key in _MAPS else []
                    value = sent.get(key) or empty
                    if value or key in meta:
                        new["metadata"][key] = value
                if "spec" in obj:
                    new["spec"] = obj["spec"]
                if new.get("spec") != current.get("spec"):
                    new["metadata"]["generation"] = int(meta.get("generation") or 1) + 1
            if new == current and secret is None:
                return current
            if meta.get("deletionTimestamp") and not new["metadata"].get("finalizers"):
                self._remove(resource, new)
                return new
            self._check_owners(new)
            self._next_rv(new)
            raw = self._record("MODIFIED", resource, new, meta.get("labels") or {})
            self._store(resource, new, raw)
            self._index_owners(new)
            self._put_secret(meta["uid"], secret)
            return new

        return self._transaction(work)

    def delete(
        self, resource: str, namespace: str, name: str, resource_version: str | None
    ) -> dict[str, Any]:
        def work() -> dict[str, Any]:
            probe = {"metadata": {"namespace": namespace, "name": name}}
            if resource_version:
                probe["metadata"]["resourceVersion"] = resource_version
            current = self._current(resource, probe)
            self._delete_object(resource, current)
            return current

        return self._transaction(work)

    def _delete_object(self, resource: str, obj: dict[str, Any]) -> None:
        meta = obj["metadata"]
        if meta.get("finalizers"):
            if not meta.get("deletionTimestamp"):
                meta["deletionTimestamp"] = timefmt.rfc3339()
                self._next_rv(obj)
                raw = self._record("MODIFIED", resource, obj, meta.get("labels") or {})
                self._store(resource, obj, raw)
            return
        self._remove(resource, obj)

    def _remove(self, resource: str, obj: dict[str, Any]) -> None:
        """Delete the row for good, then cascade to the objects it owns."""
        meta = obj["metadata"]
        uid = meta["uid"]
        self._next_rv(obj)
        self._record("DELETED", resource, obj)
        self._conn.execute(
            "DELETE FROM objects WHERE resource = ? AND namespace = ? AND name = ?",
            (resource, meta.get("namespace") or "", meta["name"]),
        )
        self._conn.execute("DELETE FROM secrets WHERE uid = ?", (uid,))
        self._conn.execute("DELETE FROM owner_refs WHERE dependent_uid = ?", (uid,))
        dependents = self._conn.execute(
            "SELECT o.resource, o.data FROM owner_refs r JOIN objects o ON o.uid = r.dependent_uid"
            " WHERE r.owner_uid = ?",
            (uid,),
        ).fetchall()
        self._conn.execute("DELETE FROM owner_refs WHERE owner_uid = ?", (uid,))
        for dep_resource, dep_raw in dependents:
            self._delete_object(dep_resource, dict(orjson.loads(dep_raw)))

    def compact(self, retention_seconds: float, max_events: int) -> int:
        """Drop watch history older than the retention, or beyond ``max_events``."""
        cutoff_time = time.time() - retention_seconds
        row = self._conn.execute(
            "SELECT max(rv) FROM events WHERE ts < ?", (cutoff_time,)
        ).fetchone()
        cutoff = row[0] or 0
        row = self._conn.execute(
            "SELECT rv FROM events ORDER BY rv DESC LIMIT 1 OFFSET ?", (max_events,)
        ).fetchone()
        if row is not None:
            cutoff = max(cutoff, row[0])
        if cutoff:
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                self._conn.execute("DELETE FROM events WHERE rv <= ?", (cutoff,))
                self._conn.execute(
                    "UPDATE meta SET value = max(value, ?) WHERE key = 'compacted_rv'", (cutoff,)
                )
                self._conn.execute("COMMIT")
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise
        return int(cutoff)
