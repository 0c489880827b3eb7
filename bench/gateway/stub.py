"""A fast stub upstream that speaks the OpenAI API, for the gateway benchmark.

``run.py`` starts it (pinned to the load generator's core) as the upstream of
every path it measures: direct, through the LLMOS gateway, through LiteLLM.
It is a raw ASGI app on uvicorn with uvloop and httptools, because that costs
the least CPU per reply here (about 25 µs per JSON reply and about 110 µs per
16-chunk stream; see ``shared/BENCHMARKING.md``), so the proxy under test, not
the upstream, sets the numbers.

Routes:

- ``POST /v1/chat/completions``: with ``"stream": true``, a ``text/event-stream``
  of 16 ``chat.completion.chunk`` events (role and first token, 14 tokens, then
  ``finish_reason: "stop"``), one ASGI send each, then ``data: [DONE]``; if the
  request sets ``stream_options.include_usage`` a usage-only chunk comes before
  ``[DONE]`` as OpenAI sends it. Without ``stream``, one ``chat.completion``
  with a ``usage`` block. Any model name is answered.
- ``GET /v1/models``: the names given with ``--model``.
- ``GET /health``: ``{"status":"ok"}``.

No authentication: it listens on 127.0.0.1 only. ``--tls-cert``/``--tls-key``
serve HTTPS instead (``tls_reference.py`` uses that).

    uv run python bench/gateway/stub.py --port 18080 [--model stub-model]
    uv run python -m bench.gateway.stub --port 18080
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

import orjson

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

STREAM_CHUNKS = 16
PROMPT_TOKENS = 16

_JSON_HEADERS = [(b"content-type", b"application/json")]
_SSE_HEADERS = [
    (b"content-type", b"text/event-stream"),
    (b"cache-control", b"no-cache"),
]
_DONE = b"data: [DONE]\n\n"


def _sse(event: dict[str, Any]) -> bytes:
    return b"data: " + orjson.dumps(event) + b"\n\n"


class _Replies:
    """Pre-encoded replies per model name, so a request costs a dict lookup.

    Every reply carries the same id and ``created`` time; proxies and clients
    do not need them to differ, and building them per request would put the
    stub's own JSON encoding into the numbers.
    """

    def __init__(self) -> None:
        self._completion: dict[str, bytes] = {}
        self._stream: dict[str, list[bytes]] = {}
        self._usage_chunk: dict[str, bytes] = {}
        self._created = int(time.time())

    def completion(self, model: str) -> bytes:
        reply = self._completion.get(model)
        if reply is None:
            text = " ".join(f"tok{i}" for i in range(STREAM_CHUNKS))
            reply = orjson.dumps(
                {
                    "id": "chatcmpl-stub",
                    "object": "chat.completion",
                    "created": self._created,
                    "model": model,
                    "choices": [
                        {
                            "index": 0,
                            "message": {"role": "assistant", "content": text},
                            "logprobs": None,
                            "finish_reason": "stop",
                        }
                    ],
                    "usage": _usage(),
                }
            )
            self._completion[model] = reply
        return reply

    def stream(self, model: str) -> list[bytes]:
        chunks = self._stream.get(model)
        if chunks is None:
            chunks = []
            for i in range(STREAM_CHUNKS):
                last = i == STREAM_CHUNKS - 1
                delta: dict[str, str] = {"role": "assistant"} if i == 0 else {}
                if not last:
                    delta["content"] = f"tok{i} "
                chunks.append(
                    _sse(
                        self._chunk(
                            model,
                            [
                                {
                                    "index": 0,
                                    "delta": delta,
                                    "logprobs": None,
                                    "finish_reason": "stop" if last else None,
                                }
                            ],
                        )
                    )
                )
            self._stream[model] = chunks
        return chunks

    def usage_chunk(self, model: str) -> bytes:
        chunk = self._usage_chunk.get(model)
        if chunk is None:
            chunk = _sse({**self._chunk(model, []), "usage": _usage()})
            self._usage_chunk[model] = chunk
        return chunk

    def _chunk(self, model: str, choices: list[dict[str, Any]]) -> dict[str, Any]:
        return {
            "id": "chatcmpl-stub",
            "object": "chat.completion.chunk",
            "created": self._created,
            "model": model,
            "choices": choices,
        }


def _usage() -> dict[str, int]:
    return {
        "prompt_tokens": PROMPT_TOKENS,
        "completion_tokens": STREAM_CHUNKS,
        "total_tokens": PROMPT_TOKENS + STREAM_CHUNKS,
    }


class StubApp:
    """The ASGI application. ``models`` is what ``GET /v1/models`` lists."""

    def __init__(self, models: list[str]) -> None:
        self._replies = _Replies()
        self._models = orjson.dumps(
            {
                "object": "list",
                "data": [
                    {"id": name, "object": "model", "created": 0, "owned_by": "stub"}
                    for name in models
                ],
            }
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        path: str = scope["path"]
        method: str = scope["method"]
        if path == "/v1/chat/completions" and method == "POST":
            await self._chat(receive, send)
        elif path == "/health" and method == "GET":
            await _json(send, 200, b'{"status":"ok"}')
        elif path == "/v1/models" and method == "GET":
            await _json(send, 200, self._models)
        else:
            await _json(send, 404, b'{"error":{"message":"not found","type":"not_found"}}')

    async def _chat(self, receive: Receive, send: Send) -> None:
        body = await _read_body(receive)
        try:
            request = orjson.loads(body)
            model = request.get("model") or "stub-model"
            if not isinstance(model, str):
                raise TypeError(model)
        except (orjson.JSONDecodeError, AttributeError, TypeError):
            await _json(
                send,
                400,
                b'{"error":{"message":"body must be a JSON object with a string model",'
                b'"type":"invalid_request_error"}}',
            )
            return
        if not request.get("stream"):
            await _json(send, 200, self._replies.completion(model))
            return
        await send({"type": "http.response.start", "status": 200, "headers": _SSE_HEADERS})
        for chunk in self._replies.stream(model):
            await send({"type": "http.response.body", "body": chunk, "more_body": True})
        options = request.get("stream_options")
        if isinstance(options, dict) and options.get("include_usage"):
            await send(
                {
                    "type": "http.response.body",
                    "body": self._replies.usage_chunk(model),
                    "more_body": True,
                }
            )
        await send({"type": "http.response.body", "body": _DONE, "more_body": False})


async def _read_body(receive: Receive) -> bytes:
    message = await receive()
    body: bytes = message.get("body", b"")
    if not message.get("more_body"):
        return body
    parts = [body]
    while message.get("more_body"):
        message = await receive()
        parts.append(message.get("body", b""))
    return b"".join(parts)


async def _json(send: Send, status: int, body: bytes) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [*_JSON_HEADERS, (b"content-length", str(len(body)).encode())],
        }
    )
    await send({"type": "http.response.body", "body": body})


def serve(
    port: int,
    models: list[str],
    host: str = "127.0.0.1",
    tls: tuple[str, str] | None = None,
) -> None:
    """Serve the stub until SIGINT or SIGTERM (uvicorn handles both); HTTPS with ``tls``."""
    import uvicorn

    uvicorn.run(
        StubApp(models),
        host=host,
        port=port,
        loop="uvloop",
        http="httptools",
        lifespan="off",
        access_log=False,
        log_level="warning",
        backlog=4096,
        # 256 concurrent clients plus the proxies' pools; the default (None) is fine,
        # but keep idle keep-alive connections long enough to survive a cell's gaps.
        timeout_keep_alive=60,
        ssl_certfile=tls[0] if tls else None,
        ssl_keyfile=tls[1] if tls else None,
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--port", type=int, default=18080, help="TCP port on 127.0.0.1")
    parser.add_argument(
        "--model",
        action="append",
        dest="models",
        help="model name listed by /v1/models (repeatable; any name is answered)",
    )
    parser.add_argument("--tls-cert", help="serve HTTPS with this certificate (PEM)")
    parser.add_argument("--tls-key", help="and this key (PEM)")
    args = parser.parse_args(argv)
    if bool(args.tls_cert) != bool(args.tls_key):
        parser.error("--tls-cert and --tls-key go together")
    tls = (args.tls_cert, args.tls_key) if args.tls_cert else None
    serve(args.port, args.models or ["stub-model"], tls=tls)


if __name__ == "__main__":
    main()
