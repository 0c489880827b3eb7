"""Many watches in one stream, for browsers: ``GET /v1-auth/watch?path=P&rv=N&path=...``.

A browser keeps at most six HTTP/1.1 connections to one host, across all its
tabs; a dashboard page that held one watch per list would leave none for
anything else (a notebook opened in another tab would hang). So the dashboard
lists each collection itself, then follows all of them here: each ``path`` is
a collection path of the resource API with the ``rv`` to resume from (same
order), authorized as ``GET path?watch=true`` would be. Each line is a watch
event plus the index of its path: ``{"stream": 0, "type": "ADDED", "object": …}``.
A path that cannot be watched (403, 404, 410 Gone) gets one ``ERROR`` line
with a Status object, and the others go on.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator

import orjson
from fastapi import APIRouter, Depends, Request
from starlette.responses import StreamingResponse

from llmos._lib.errors import LLMOSError, Reason
from llmos._lib.quantity import is_int64
from llmos.api.errors import status_body
from llmos.api.security import principal
from llmos.api.state import app_state
from llmos.api.target import resolve
from llmos.api.visibility import open_watch
from llmos.api.watch import line
from llmos.auth.rbac import Principal

router = APIRouter()
MAX_PATHS = 32
HEARTBEAT_SECONDS = 15.0

log = logging.getLogger(__name__)


def _error(index: int, error: LLMOSError) -> bytes:
    body = orjson.dumps(status_body(error)).decode()
    return f'{{"stream":{index},"type":"ERROR","object":{body}}}\n'.encode()


@router.get("/v1-auth/watch")
async def watch_many(request: Request, who: Principal = Depends(principal)) -> StreamingResponse:
    state = app_state(request)
    paths = request.query_params.getlist("path")
    versions = request.query_params.getlist("rv")
    if not paths or len(paths) > MAX_PATHS:
        raise LLMOSError(f"give 1 to {MAX_PATHS} path parameters", Reason.BAD_REQUEST)
    if len(versions) != len(paths) or not all(is_int64(v) for v in versions):
        raise LLMOSError(
            "give one rv (a resourceVersion, a whole number) per path, in the same order",
            Reason.BAD_REQUEST,
        )
    queue: asyncio.Queue[bytes] = asyncio.Queue(maxsize=1024)

    async def follow(index: int, path: str, version: int) -> None:
        try:
            parts = [p for p in path.split("/") if p]
            if len(parts) < 4 or parts[0] != "apis":
                raise LLMOSError(
                    f"{path!r} is not a collection path under /apis/", Reason.NOT_FOUND
                )
            target = resolve(state, parts[1], parts[2], parts[3:], path)
            if target.name is not None:
                raise LLMOSError(
                    f"{path!r} names one object: watch its collection", Reason.BAD_REQUEST
                )
            events = await open_watch(state, who, target, version)
            async for event in events:
                if event.type != "BOOKMARK":
                    await queue.put(f'{{"stream":{index},'.encode() + line(target.info, event)[1:])
        except LLMOSError as exc:
            await queue.put(_error(index, exc))
        except Exception:  # the other paths stream on; this one says it stopped
            log.exception("watch of %s failed", path)
            failed = LLMOSError("internal error: the server log has the details", Reason.INTERNAL)
            await queue.put(_error(index, failed))

    async def body() -> AsyncIterator[bytes]:
        tasks = [
            asyncio.create_task(follow(i, p, int(v)))
            for i, (p, v) in enumerate(zip(paths, versions, strict=True))
        ]
        try:
            while True:
                try:
                    yield await asyncio.wait_for(queue.get(), HEARTBEAT_SECONDS)
                except TimeoutError:
                    yield b"\n"  # keeps proxies from closing a quiet stream
        finally:
            for task in tasks:
                task.cancel()
            for task in tasks:
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task

    return StreamingResponse(
        body(),
        media_type="application/json",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )
