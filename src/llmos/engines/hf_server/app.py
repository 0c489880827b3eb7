"""The OpenAI-compatible routes of the transformers engine, as a FastAPI app.

Built by ``__main__.py`` around a :class:`~.model.LoadedModel`. One asyncio
lock serializes everything that runs the model, so requests queue instead of
fighting over the CPU or the GPU. Errors use the OpenAI shape
(``{"error": {"message", "type", "param", "code"}}``); a bad body is a 400.
"""

from __future__ import annotations

import asyncio
import base64
import hmac
import json
import logging
import struct
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response, StreamingResponse
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Receive, Scope, Send

from llmos.engines.hf_server.model import BadInput, Generation, LoadedModel, Settings
from llmos.engines.hf_server.protocol import (
    ChatCompletionRequest,
    CompletionRequest,
    EmbeddingRequest,
    Sampling,
)
from llmos.engines.hf_server.stops import StopScanner

log = logging.getLogger(__name__)


class TextStream:
    """One generation's text piece by piece, cut at the first stop string."""

    def __init__(
        self, loaded: LoadedModel, ids: list[int], settings: Settings, stops: tuple[str, ...]
    ):
        self.loaded, self.ids, self.settings = loaded, ids, settings
        self.scanner = StopScanner(stops)
        self.prompt_tokens = len(ids)
        self.completion_tokens = 0
        self.finish_reason = "stop"
        self.error: BaseException | None = None

    async def pieces(self) -> AsyncIterator[str]:
        """Call with the model lock held. A failure ends the text and is left in ``error``."""
        run = Generation(self.loaded, self.ids, self.settings)
        try:
            while not self.scanner.stopped:
                piece = await asyncio.to_thread(run.next_piece)
                if piece is None:
                    break
                if text := self.scanner.feed(piece):
                    yield text
            if not self.scanner.stopped and (rest := self.scanner.flush()):
                yield rest
        finally:
            run.cancel()
            await asyncio.to_thread(run.join)
        self.error = run.error
        self.completion_tokens = run.completion_tokens
        self.finish_reason = "stop" if self.scanner.stopped else run.finish_reason

    async def text(self) -> str:
        """All the text at once; raises what the generation raised."""
        text = "".join([piece async for piece in self.pieces()])
        if self.error is not None:
            raise self.error
        return text


class KeyCheck:
    """Lets through only requests that carry the engine's key, except ``/health``.

    Plain ASGI (not ``@app.middleware``, which would wrap every streamed reply).
    """

    def __init__(self, app: ASGIApp, wanted: bytes) -> None:
        self.app, self.wanted = app, wanted

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"] != "/health":
            given = dict(scope["headers"]).get(b"authorization", b"")
            if not hmac.compare_digest(given, self.wanted):
                refusal = error(
                    401,
                    "this engine answers only the LLMOS gateway: send requests to the "
                    "server's /v1 on port 8443, with an LLMOS API key",
                    kind="authentication_error",
                    code="invalid_api_key",
                )
                await refusal(scope, receive, send)
                return
        await self.app(scope, receive, send)


def create_app(loaded: LoadedModel, served_name: str, api_key: str | None = None) -> FastAPI:
    """The engine's routes; with ``api_key``, all but ``/health`` want ``Bearer API_KEY``."""
    app = FastAPI(title="LLMOS transformers engine", docs_url=None, redoc_url=None)
    lock = asyncio.Lock()
    started = int(time.time())
    if api_key:
        app.add_middleware(KeyCheck, wanted=f"Bearer {api_key}".encode())

    @app.exception_handler(RequestValidationError)
    async def invalid_body(request: Request, exc: RequestValidationError) -> Response:
        errors = list(exc.errors())
        if any(e.get("type") == "json_invalid" for e in errors):
            return error(400, "the request body is not valid JSON")
        # Of a union's alternatives, the deepest error says most (a part's bad type).
        worst = max(errors, key=lambda e: len(e.get("loc", ())))
        where = [str(p) for p in worst.get("loc", ()) if p != "body" and not _union_tag(p)]
        field = ".".join(where) or "request body"
        return error(400, f"{field}: {worst.get('msg')}", param=where[0] if where else None)

    @app.exception_handler(BadInput)
    async def bad_input(request: Request, exc: BadInput) -> Response:
        return error(400, exc.message, param=exc.param)

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, exc: HTTPException) -> Response:
        return error(exc.status_code, f"{request.method} {request.url.path}: {exc.detail}")

    @app.exception_handler(Exception)
    async def crashed(request: Request, exc: Exception) -> Response:
        log.exception("request failed")
        return error(500, f"the engine failed: {exc}", kind="server_error")

    @app.get("/health")
    async def health() -> dict[str, str]:
        return {"status": "ok"}  # the model is loaded before the server listens

    @app.get("/v1/models")
    async def models() -> dict[str, Any]:
        card = {"id": served_name, "object": "model", "created": started, "owned_by": "llmos"}
        return {"object": "list", "data": [card]}

    def check_model(name: str | None) -> Response | None:
        if name is None or name == served_name:
            return None
        return error(
            404,
            f"model {name!r} does not exist: this server serves {served_name!r}",
            param="model",
            code="model_not_found",
        )

    @app.post("/v1/chat/completions")
    async def chat(body: ChatCompletionRequest) -> Response:
        if (wrong := check_model(body.model)) is not None:
            return wrong
        # "developer" is OpenAI's newer name for "system", which chat templates know.
        messages = [
            {"role": "system" if m.role == "developer" else m.role, "content": m.text()}
            for m in body.messages
        ]
        ids = loaded.chat_ids(messages)
        stream = TextStream(
            loaded, ids, settings(body, ids, body.token_limit(), "messages"), body.stops()
        )
        reply = Reply(served_name, "chatcmpl", "chat.completion", body)
        if body.stream:
            return sse(reply.chat_events(stream, lock))
        async with lock:
            text = await stream.text()
        message = {"role": "assistant", "content": text}
        choice = {
            "index": 0,
            "message": message,
            "logprobs": None,
            "finish_reason": stream.finish_reason,
        }
        return JSONResponse(reply.body([choice], [stream]))

    @app.post("/v1/completions")
    async def completions(body: CompletionRequest) -> Response:
        if (wrong := check_model(body.model)) is not None:
            return wrong
        streams = [
            TextStream(loaded, ids, settings(body, ids, body.max_tokens, "prompt"), body.stops())
            for ids in prompt_ids(body.prompt)
        ]
        reply = Reply(served_name, "cmpl", "text_completion", body)
        if body.stream:
            return sse(reply.text_events(streams, lock))
        choices = []
        async with lock:
            for index, stream in enumerate(streams):
                text = await stream.text()
                choices.append(
                    {
                        "index": index,
                        "text": text,
                        "logprobs": None,
                        "finish_reason": stream.finish_reason,
                    }
                )
        return JSONResponse(reply.body(choices, streams))

    @app.post("/v1/embeddings")
    async def embeddings(body: EmbeddingRequest) -> Response:
        if (wrong := check_model(body.model)) is not None:
            return wrong
        if body.dimensions is not None and body.dimensions != loaded.hidden_size:
            raise BadInput(
                f"dimensions: this model's embeddings have {loaded.hidden_size}", "dimensions"
            )
        inputs = prompt_ids(body.input, param="input")
        async with lock:
            vectors = await asyncio.to_thread(loaded.embed, inputs)
        data = [
            {"object": "embedding", "index": i, "embedding": encode(v, body.encoding_format)}
            for i, v in enumerate(vectors)
        ]
        tokens = sum(len(ids) for ids in inputs)
        usage = {"prompt_tokens": tokens, "total_tokens": tokens}
        return JSONResponse({"object": "list", "data": data, "model": served_name, "usage": usage})

    def settings(body: Sampling, ids: list[int], wanted: int | None, prompt: str) -> Settings:
        room = loaded.room(len(ids), wanted, "max_tokens" if wanted else prompt)
        return Settings(room, body.temperature, body.top_p, body.seed)

    def prompt_ids(
        prompt: str | list[str] | list[int] | list[list[int]], param: str = "prompt"
    ) -> list[list[int]]:
        if isinstance(prompt, str):
            return [loaded.check_ids(loaded.text_ids(prompt), param)]
        if not prompt:
            raise BadInput(f"{param} is empty", param)
        if all(isinstance(p, int) for p in prompt):
            return [loaded.check_ids([int(p) for p in prompt if isinstance(p, int)], param)]
        return [
            loaded.check_ids(loaded.text_ids(p) if isinstance(p, str) else list(p), param)
            for p in prompt
            if not isinstance(p, int)
        ]

    return app


class Reply:
    """The id, timestamps and shapes shared by one response's bodies and chunks."""

    def __init__(self, model: str, prefix: str, kind: str, body: Sampling) -> None:
        self.head = {
            "id": f"{prefix}-{uuid.uuid4().hex}",
            "object": kind,
            "created": int(time.time()),
            "model": model,
        }
        self.with_usage = body.usage_in_stream()

    def body(self, choices: list[dict[str, Any]], streams: list[TextStream]) -> dict[str, Any]:
        return {**self.head, "choices": choices, "usage": usage(streams)}

    def chunk(self, choices: list[dict[str, Any]], streams: list[TextStream] | None = None) -> str:
        data: dict[str, Any] = {**self.head, "choices": choices}
        if self.with_usage:
            data["usage"] = usage(streams) if streams is not None else None
        return f"data: {json.dumps(data, ensure_ascii=False)}\n\n"

    async def chat_events(self, stream: TextStream, lock: asyncio.Lock) -> AsyncIterator[str]:
        self.head["object"] = "chat.completion.chunk"

        def delta(content: dict[str, str], finish: str | None = None) -> str:
            choice = {"index": 0, "delta": content, "logprobs": None, "finish_reason": finish}
            return self.chunk([choice])

        async with lock:
            yield delta({"role": "assistant", "content": ""})
            async for piece in stream.pieces():
                yield delta({"content": piece})
        if stream.error is not None:
            yield failure(stream.error)
            return
        yield delta({}, stream.finish_reason)
        if self.with_usage:
            yield self.chunk([], [stream])
        yield "data: [DONE]\n\n"

    async def text_events(
        self, streams: list[TextStream], lock: asyncio.Lock
    ) -> AsyncIterator[str]:
        def text(index: int, piece: str, finish: str | None = None) -> str:
            choice = {"index": index, "text": piece, "logprobs": None, "finish_reason": finish}
            return self.chunk([choice])

        async with lock:
            for index, stream in enumerate(streams):
                async for piece in stream.pieces():
                    yield text(index, piece)
                if stream.error is not None:
                    yield failure(stream.error)
                    return
                yield text(index, "", stream.finish_reason)
        if self.with_usage:
            yield self.chunk([], streams)
        yield "data: [DONE]\n\n"


def failure(exc: BaseException) -> str:
    """An SSE error event: a stream that fails has already sent its 200."""
    message = f"the engine failed: {exc}"
    body = {"error": {"message": message, "type": "server_error", "param": None, "code": None}}
    return f"data: {json.dumps(body)}\n\n"


def _union_tag(part: object) -> bool:
    """Pydantic names a union's alternative in the error path (``str``, ``list[int]``)."""
    return isinstance(part, str) and (part in {"str", "int", "list", "float"} or "[" in part)


def usage(streams: list[TextStream]) -> dict[str, int]:
    prompt = sum(s.prompt_tokens for s in streams)
    completion = sum(s.completion_tokens for s in streams)
    return {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
    }


def encode(vector: list[float], encoding: str) -> list[float] | str:
    if encoding == "base64":  # what the openai client asks for by default
        return base64.b64encode(struct.pack(f"<{len(vector)}f", *vector)).decode()
    return vector


def sse(events: AsyncIterator[str]) -> StreamingResponse:
    return StreamingResponse(
        events, media_type="text/event-stream", headers={"Cache-Control": "no-cache"}
    )


def error(
    status: int,
    message: str,
    *,
    param: str | None = None,
    code: str | None = None,
    kind: str | None = None,
) -> JSONResponse:
    kind = kind or ("invalid_request_error" if status < 500 else "server_error")
    body = {"error": {"message": message, "type": kind, "param": param, "code": code}}
    return JSONResponse(body, status_code=status)
