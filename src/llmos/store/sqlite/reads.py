"""Read operations of the SQLite store; each runs on a reader thread of its own."""

from __future__ import annotations

import base64
import sqlite3
from collections.abc import Collection
from typing import Any

import orjson

from llmos._lib.errors import LLMOSError, Reason
from llmos.store.base import EventType, ObjectList, WatchEvent
from llmos.store.selector import Selector


def encode_continue(namespace: str, name: str, rv: int) -> str:
    raw = orjson.dumps({"ns": namespace, "n": name, "rv": rv})
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_continue(token: str) -> tuple[str, str]:
    try:
        padded = token + "=" * (-len(token) % 4)
        data = orjson.loads(base64.urlsafe_b64decode(padded))
        return str(data["ns"]), str(data["n"])
    except (ValueError, KeyError, TypeError) as exc:
        raise LLMOSError(
            f"continue token {token[:40]!r} is not valid: pass the 'continue' value "
            "from the previous page unchanged",
            Reason.BAD_REQUEST,
        ) from exc


def revision(conn: sqlite3.Connection, key: str = "rv") -> int:
    (value,) = conn.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
    return int(value)


def get(conn: sqlite3.Connection, resource: str, namespace: str, name: str) -> str | None:
    row = conn.execute(
        "SELECT data FROM objects WHERE resource = ? AND namespace = ? AND name = ?",
        (resource, namespace, name),
    ).fetchone()
    return None if row is None else str(row[0])


def get_secret(conn: sqlite3.Connection, resource: str, namespace: str, name: str) -> str | None:
    row = conn.execute(
        "SELECT s.data FROM objects o JOIN secrets s ON s.uid = o.uid"
        " WHERE o.resource = ? AND o.namespace = ? AND o.name = ?",
        (resource, namespace, name),
    ).fetchone()
    return None if row is None else str(row[0])


def _scope(
    resource: str, namespace: str | None, namespaces: Collection[str] | None
) -> tuple[str, list[Any]]:
    clause, params = "resource = ?", [resource]
    if namespace is not None:
        clause += " AND namespace = ?"
        params.append(namespace)
    elif namespaces is not None:
        marks = ",".join("?" * len(namespaces))
        clause += f" AND namespace IN ({marks})"
        params.extend(sorted(namespaces))
    return clause, params


def list_objects(
    conn: sqlite3.Connection,
    resource: str,
    namespace: str | None,
    selector: Selector | None,
    limit: int | None,
    continue_token: str | None,
    namespaces: Collection[str] | None,
) -> ObjectList:
    conn.execute("BEGIN")
    try:
        rv = revision(conn)
        clause, params = _scope(resource, namespace, namespaces)
        if continue_token:
            clause += " AND (namespace, name) > (?, ?)"
            params.extend(decode_continue(continue_token))
        query = f"SELECT namespace, name, labels, data FROM objects WHERE {clause}"
        query += " ORDER BY namespace, name"
        cursor = conn.execute(query, params)
        items: list[str] = []
        last: tuple[str, str] | None = None
        more = False
        for ns, name, labels, data in cursor:
            if selector and not selector.matches(orjson.loads(labels)):
                continue
            if limit is not None and len(items) >= limit:
                more = True
                break
            items.append(data)
            last = (ns, name)
    finally:
        conn.execute("COMMIT")
    token = encode_continue(last[0], last[1], rv) if more and last else None
    return ObjectList(items, rv, token)


def events_after(
    conn: sqlite3.Connection,
    resource: str,
    rv: int,
    namespace: str | None,
    namespaces: Collection[str] | None,
) -> tuple[int, int, list[WatchEvent]]:
    """Return (compacted revision, latest revision, events after ``rv``) in one read
    transaction."""
    conn.execute("BEGIN")
    try:
        compacted = revision(conn, "compacted_rv")
        latest = revision(conn)
        clause, params = _scope(resource, namespace, namespaces)
        rows = conn.execute(
            "SELECT rv, namespace, name, type, labels, prev_labels, data FROM events"
            f" WHERE rv > ? AND {clause} ORDER BY rv",
            [rv, *params],
        ).fetchall()
    finally:
        conn.execute("COMMIT")
    events = []
    for ev_rv, ns, name, type_, labels, prev, data in rows:
        kind: EventType = type_
        events.append(
            WatchEvent(
                kind,
                resource,
                ns,
                name,
                ev_rv,
                data,
                orjson.loads(labels),
                None if prev is None else orjson.loads(prev),
            )
        )
    return compacted, latest, events
