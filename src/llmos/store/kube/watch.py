"""Kubernetes watch streams as the store's ``WatchEvent`` iterators.

A watch is one long GET with ``watch=true`` whose body is a JSON object per
line. An ``ERROR`` line carries a ``Status``: 410 means the revision asked for
is no longer kept, and becomes the store's Gone, as with SQLite. When the
stream is quiet for ``bookmark_interval`` the iterator yields a BOOKMARK at the
last revision it delivered, and the API server's own bookmarks pass through;
without ``bookmark_interval`` there are none, as with SQLite (controllers and
informers treat every event as an object).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Collection
from typing import Any

import httpx
import orjson

from llmos.store.base import EventType, WatchEvent
from llmos.store.kube.client import KubeClient, translate, unreachable
from llmos.store.kube.objects import clean, dumps, revision

_TYPES: dict[str, EventType] = {
    "ADDED": "ADDED",
    "MODIFIED": "MODIFIED",
    "DELETED": "DELETED",
    "BOOKMARK": "BOOKMARK",
}


def event_of(resource: str, type_: EventType, obj: dict[str, Any]) -> WatchEvent:
    meta = obj.get("metadata") or {}
    return WatchEvent(
        type_,
        resource,
        meta.get("namespace") or "",
        meta.get("name") or "",
        revision(obj),
        dumps(clean(obj)),
        meta.get("labels") or {},
    )


async def open_stream(
    client: KubeClient,
    resource: str,
    url_path: str,
    params: dict[str, str],
    *,
    since: int,
    namespaces: Collection[str] | None,
    bookmark_interval: float | None,
) -> AsyncIterator[WatchEvent]:
    """Start the watch request now (its errors raise here) and return its events."""
    params = {**params, "watch": "true"}
    if bookmark_interval is not None:  # as with SQLite, bookmarks only for those who ask
        params["allowWatchBookmarks"] = "true"
    request = client.http.build_request(
        "GET",
        url_path,
        params=params,
        timeout=httpx.Timeout(30.0, read=None),
    )
    try:
        response = await client.http.send(request, stream=True)
    except httpx.HTTPError as exc:
        raise unreachable(client.connection.url, exc) from exc
    if not response.is_success:
        body = await response.aread()
        await response.aclose()
        status = orjson.loads(body) if body.startswith(b"{") else {}
        raise translate(response.status_code, status, "", "", "")
    return _events(resource, response, since, namespaces, bookmark_interval)


async def _next_line(lines: AsyncIterator[str]) -> str | None:
    try:
        return await anext(lines)
    except StopAsyncIteration:
        return None


async def _events(
    resource: str,
    response: httpx.Response,
    seen: int,
    namespaces: Collection[str] | None,
    bookmark_interval: float | None,
) -> AsyncIterator[WatchEvent]:
    wanted = None if namespaces is None else frozenset(namespaces)
    lines = response.aiter_lines()
    # One read in flight at a time, kept across quiet intervals: cancelling a read
    # would break the stream, so a timeout only stops waiting for it.
    pending: asyncio.Task[str | None] | None = None
    try:
        while True:
            if pending is None:
                pending = asyncio.create_task(_next_line(lines))
            done, _ = await asyncio.wait({pending}, timeout=bookmark_interval)
            if not done:
                yield WatchEvent("BOOKMARK", resource, "", "", seen, "{}")
                continue
            read, pending = pending, None
            try:
                line = read.result()
            except httpx.HTTPError:
                return  # a dropped connection ends the stream like the server's timeout
            if line is None:
                return  # the server ended the watch: the caller resumes from `seen`
            if not line.strip():
                continue
            message = orjson.loads(line)
            kind = message.get("type")
            obj: dict[str, Any] = message.get("object") or {}
            if kind == "ERROR":
                raise translate(int(obj.get("code") or 500), obj, "", "", "")
            type_ = _TYPES.get(kind or "")
            if type_ is None:
                continue
            if type_ == "BOOKMARK":
                seen = max(seen, revision(obj))
                if bookmark_interval is not None:
                    yield WatchEvent("BOOKMARK", resource, "", "", seen, "{}")
                continue
            event = event_of(resource, type_, obj)
            seen = max(seen, event.rv)
            if wanted is not None and event.namespace not in wanted:
                continue
            yield event
    finally:
        if pending is not None:
            pending.cancel()
            with contextlib.suppress(BaseException):
                await pending
        with contextlib.suppress(httpx.HTTPError):
            await response.aclose()


async def chained(
    backlog: list[WatchEvent], stream: AsyncIterator[WatchEvent]
) -> AsyncIterator[WatchEvent]:
    """What ``backlog`` holds, then what ``stream`` brings; closes ``stream`` at the end."""
    try:
        for event in backlog:
            yield event
        async for event in stream:
            yield event
    finally:
        close = getattr(stream, "aclose", None)
        if close is not None:
            await close()
