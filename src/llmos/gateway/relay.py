"""Passing one request to a replica and its reply back to the client, and what it used.

:meth:`llmos.gateway.proxy.Gateway._forward` calls :func:`relay` once a
request is authorized and routed, with a :class:`DisconnectWatch` around it.
A JSON reply is read whole and sent on; a stream is sent on chunk by chunk, as
each piece arrives from the upstream (what has arrived goes out at once, in
one piece; nothing waits for more). The tokens used are taken from the
reply's ``usage`` (for a stream, its last events; without one, from counting
its content chunks). An engine's 5xx goes to the client as an OpenAI error of
the same status without its traceback or file paths (the server logs the
whole body); its 4xx, the engine's own answer to a bad request, goes as it is.

Everything runs in the ASGI request's own task: the only other task is the
disconnect watch, which cancels it if the client goes away.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time

import orjson
from starlette.types import Receive, Send

from llmos.gateway.errors import GatewayError, engine_failure
from llmos.gateway.upstream import Connection, UpstreamError, Upstreams

log = logging.getLogger(__name__)

_NO_CACHE = (b"cache-control", b"no-cache")
_CONTENT = b'"content":'
_NO_CONTENT = b'"content":""'
_DONE = b"data: [DONE]"
_USAGE = b'"usage"'


class Exchange:
    """What one proxied request did, for usage accounting and metrics."""

    __slots__ = ("code", "completion", "delivered", "first", "prompt", "started")

    def __init__(self) -> None:
        self.started = time.perf_counter()
        self.code = 502
        # A stream's ``data: [DONE]`` went to the client: a client that leaves after
        # it (before the replica's end of body) had the whole reply.
        self.delivered = False
        self.first: float | None = None  # seconds to the first streamed chunk
        self.prompt = 0
        self.completion = 0


class DisconnectWatch:
    """Cancels the request's task if the client goes away before its reply is done.

    A small task waits on ``receive()`` for ``http.disconnect``. It also wakes
    when the response completes (uvicorn then reports a disconnect as well); by
    then ``finished`` is set and it does nothing.
    """

    __slots__ = ("finished", "gone", "task")

    def __init__(self, loop: asyncio.AbstractEventLoop, receive: Receive) -> None:
        task = asyncio.current_task(loop)
        assert task is not None
        self.task = task
        self.finished = False
        self.gone = False
        loop.create_task(_disconnected(receive)).add_done_callback(self._done)

    def _done(self, watcher: asyncio.Task[None]) -> None:
        if not self.finished and not watcher.cancelled() and watcher.exception() is None:
            self.gone = True
            self.task.cancel()

    def swallow(self) -> bool:
        """After a CancelledError: True (and the cancel undone) if it was ours."""
        if not self.gone:
            return False
        self.task.uncancel()
        return True


async def _disconnected(receive: Receive) -> None:
    while (await receive())["type"] != "http.disconnect":
        pass


async def relay(
    upstreams: Upstreams,
    send: Send,
    url: str,
    path: str,
    raw: bytes,
    stream: bool,
    exchange: Exchange,
    authorization: bytes = b"",
    unasked_usage: bool = False,
) -> None:
    """POST ``raw`` to ``url + path`` and send the reply on; fill in ``exchange``.

    ``authorization`` is the ``Authorization`` value the replica wants (its engine key).
    With ``unasked_usage``, the gateway asked for a stream's usage chunk, which the client
    did not: it is read, and left out of what the client gets.
    """
    conn = None
    try:
        conn = await upstreams.connect(url)
        conn.send(upstreams.origin(url).head(path, authorization), raw)
        await (conn.headers() if stream else conn.body())
    except UpstreamError as exc:
        if conn is not None:
            conn.close()
        if conn is not None and conn.header_done:
            exchange.code = 502
            raise GatewayError(502, f"the model's replica broke off its reply ({exc})") from exc
        exchange.code = 503
        raise GatewayError(
            503, f"the model's replica is not reachable ({exc}): retry shortly", retry_after=2
        ) from exc
    except BaseException:
        if conn is not None:
            conn.close()  # cancelled: the upstream sees the connection go
        raise
    status = exchange.code = conn.status
    if stream and status == 200:
        await _relay_stream(upstreams, send, url, conn, exchange, unasked_usage)
        return
    try:
        body = await conn.body()
    except UpstreamError as exc:
        exchange.code = 502
        raise GatewayError(502, f"the model's replica broke off its reply ({exc})") from exc
    finally:
        upstreams.release(url, conn)
    if status >= 500:
        # An engine's 5xx may carry a traceback and the paths of its files: the client gets
        # its message without them, the server's log the whole body.
        log.warning(
            "the replica at %s answered %d to %s: %s",
            url,
            status,
            path,
            body[:65536].decode(errors="replace"),
        )
        raise engine_failure(status, body)
    headers = [(b"content-type", conn.content_type), (b"content-length", b"%d" % len(body))]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
    if status == 200:
        _usage_from_body(body, exchange)


async def _relay_stream(
    upstreams: Upstreams,
    send: Send,
    url: str,
    conn: Connection,
    exchange: Exchange,
    unasked_usage: bool,
) -> None:
    tail = b""
    try:
        headers = [(b"content-type", conn.content_type), _NO_CACHE]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        more = True
        while more:
            chunk = await conn.chunk()
            # The end goes out with the last piece when both have arrived: one write less.
            more = not conn.complete
            if chunk and exchange.first is None:
                exchange.first = time.perf_counter() - exchange.started
            sent = _without_usage(chunk) if unasked_usage and _USAGE in chunk else chunk
            await send({"type": "http.response.body", "body": sent, "more_body": more})
            if chunk:
                exchange.completion += chunk.count(_CONTENT) - chunk.count(_NO_CONTENT)
                tail = (tail + chunk)[-4096:]
                exchange.delivered = tail.rstrip().endswith(_DONE)
    except UpstreamError as exc:
        # The reply has started: all the client can learn is that it was cut short.
        exchange.code = 502
        log.warning("the replica at %s broke off a streamed reply: %s", url, exc)
    finally:
        upstreams.release(url, conn)
        # Also when the client left after [DONE] (cancelled): its tokens were used.
        _usage_from_stream(tail, exchange)


def _without_usage(piece: bytes) -> bytes:
    """``piece`` less the events that carry only usage (no choices).

    An event split between two pieces goes on as it is: the client then sees the usage
    chunk, as one that asked for it would (choices empty), rather than waiting for more.
    """
    kept = []
    for event in piece.split(b"\n\n"):
        data = event.strip()
        if data.startswith(b"data: ") and _USAGE in data:
            with contextlib.suppress(orjson.JSONDecodeError):
                reply = orjson.loads(data[6:])
                if isinstance(reply, dict) and reply.get("choices") == [] and reply.get("usage"):
                    continue
        kept.append(event)
    return b"\n\n".join(kept)


def _usage_from_body(body: bytes, exchange: Exchange) -> None:
    try:
        usage = orjson.loads(body).get("usage") or {}
    except (orjson.JSONDecodeError, AttributeError):
        return
    exchange.prompt = int(usage.get("prompt_tokens") or 0)
    exchange.completion = int(usage.get("completion_tokens") or 0)


def _usage_from_stream(tail: bytes, exchange: Exchange) -> None:
    """Prefer the usage an engine puts in its last chunk over our chunk count."""
    marker = tail.rfind(b'"usage":')
    if marker < 0:
        return
    for line in reversed(tail.split(b"\n")):
        if b'"usage":' in line and line.startswith(b"data: "):
            with contextlib.suppress(orjson.JSONDecodeError, AttributeError, TypeError):
                usage = orjson.loads(line[6:]).get("usage") or {}
                if usage:
                    exchange.prompt = int(usage.get("prompt_tokens") or 0)
                    exchange.completion = int(usage.get("completion_tokens") or 0)
            return
