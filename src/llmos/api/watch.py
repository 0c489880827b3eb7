"""Streaming a watch over HTTP: one JSON event per line, as Kubernetes does.

An error from the store once the stream has begun (Gone from the kube store,
whose API server reports a forgotten revision only as the stream's first event)
becomes an ``ERROR`` event carrying a ``Status``, as in Kubernetes.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import orjson
from starlette.responses import StreamingResponse

from llmos._lib.errors import LLMOSError
from llmos.api.errors import status_body
from llmos.resources.registry import KindInfo
from llmos.store.base import WatchEvent

BOOKMARK_SECONDS = 15.0


def line(info: KindInfo, event: WatchEvent) -> bytes:
    if event.type == "BOOKMARK":
        obj = orjson.dumps(
            {
                "apiVersion": info.api_version,
                "kind": info.kind,
                "metadata": {"resourceVersion": str(event.rv)},
            }
        ).decode()
    else:
        obj = event.raw
    return f'{{"type":"{event.type}","object":{obj}}}\n'.encode()


def stream_response(
    info: KindInfo,
    events: AsyncIterator[WatchEvent],
    timeout_seconds: float | None,
    bookmarks: bool,
) -> StreamingResponse:
    async def body() -> AsyncIterator[bytes]:
        deadline = None if timeout_seconds is None else time.monotonic() + timeout_seconds
        iterator = aiter(events)
        try:
            while True:
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    return
                try:
                    # In this task (not wait_for's): a client that leaves cancels it here, and
                    # the generator is not still running when it is closed below.
                    async with asyncio.timeout(remaining):
                        event = await anext(iterator)
                except (TimeoutError, StopAsyncIteration):
                    return
                except LLMOSError as exc:
                    # After the 200 is sent an error can only be an event: an ERROR with a
                    # Status, as Kubernetes sends (a 410 from the kube store's API server).
                    yield orjson.dumps({"type": "ERROR", "object": status_body(exc)}) + b"\n"
                    return
                if event.type == "BOOKMARK" and not bookmarks:
                    continue
                yield line(info, event)
        finally:
            close = getattr(iterator, "aclose", None)
            if close is not None:
                await close()

    return StreamingResponse(
        body(),
        media_type="application/json",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )
