"""Token counts at the end of a llama.cpp stream, for clients that ask for them.

llama-cpp-python (0.3.36) counts a stream's prompt and completion tokens, in
its ``_create_completion`` generator's locals, and reports them only when not
streaming. :func:`install` wraps its methods so that a stream whose request
asked for usage (:data:`WANTS_USAGE`, set per request by :class:`AskedForUsage`)
ends, as OpenAI's does, with one chunk without choices whose ``usage`` holds
those counts: read from the generator's frame as its last chunk goes out. If
a later llama-cpp-python renames them, streams just end without usage (the
gateway then counts chunks), and tests/gateway/test_chat.py says so.
"""

from __future__ import annotations

import contextvars
import functools
from collections.abc import Callable, Iterator
from typing import Any

import orjson
from starlette.types import ASGIApp, Message, Receive, Scope, Send

# Whether the request being served asked for usage at the end of its stream.
WANTS_USAGE: contextvars.ContextVar[bool] = contextvars.ContextVar("wants_usage", default=False)
# Set while a chat completion runs: its text completion reports to it instead.
_CHAT_COUNTS: contextvars.ContextVar[dict[str, int] | None] = contextvars.ContextVar(
    "chat_counts", default=None
)
_STREAMED = frozenset({"/v1/completions", "/v1/chat/completions"})


class AskedForUsage:
    """ASGI middleware: note whether a completion request wants ``usage`` in its stream."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] not in _STREAMED:
            await self.app(scope, receive, send)
            return
        parts, more = [], True
        while more:
            message = await receive()
            if message["type"] != "http.request":
                break
            parts.append(message.get("body", b""))
            more = message.get("more_body", False)
        body = b"".join(parts)
        WANTS_USAGE.set(_asks_for_usage(body))
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)


def _asks_for_usage(body: bytes) -> bool:
    try:
        request = orjson.loads(body)
        options = request.get("stream_options") or {}
        return bool(request.get("stream")) and options.get("include_usage") is True
    except (orjson.JSONDecodeError, AttributeError):
        return False


def install(llama_class: type) -> None:
    """Wrap ``llama_class``'s completion methods (once) to end asked-for streams with usage."""
    if getattr(llama_class, "_llmos_usage", False):
        return
    wrapped = {
        "_create_completion": _counting(llama_class._create_completion),  # type: ignore[attr-defined]
        "create_completion": _reporting(llama_class.create_completion, chat=False),  # type: ignore[attr-defined]
        "create_chat_completion": _reporting(llama_class.create_chat_completion, chat=True),  # type: ignore[attr-defined]
        "_llmos_usage": True,
    }
    for name, value in wrapped.items():
        setattr(llama_class, name, value)


def _counting(create: Callable[..., Any]) -> Callable[..., Any]:
    """``_create_completion`` whose stream leaves its token counts in the current counts."""

    @functools.wraps(create)
    def wrapper(self: Any, *args: Any, **kwargs: Any) -> Any:
        result = create(self, *args, **kwargs)
        counts = _CHAT_COUNTS.get()
        if counts is None or not kwargs.get("stream"):
            return result
        return _read_counts(result, counts)

    return wrapper


def _read_counts(chunks: Iterator[Any], counts: dict[str, int]) -> Iterator[Any]:
    for chunk in chunks:
        frame = getattr(chunks, "gi_frame", None)
        if frame is not None:  # the generator waits at this chunk's yield: its counts so far
            prompt, completion = (
                frame.f_locals.get(n) for n in ("prompt_tokens", "completion_tokens")
            )
            if isinstance(prompt, list) and isinstance(completion, list):
                counts["prompt_tokens"], counts["completion_tokens"] = len(prompt), len(completion)
        yield chunk


def _reporting(create: Callable[..., Any], *, chat: bool) -> Callable[..., Any]:
    """A public completion method whose asked-for stream ends with a usage chunk."""

    @functools.wraps(create)
    def wrapper(self: Any, *args: Any, **kwargs: Any) -> Any:
        if not (kwargs.get("stream") and WANTS_USAGE.get()) or _CHAT_COUNTS.get() is not None:
            return create(self, *args, **kwargs)  # a chat's own text completion: the chat reports
        counts: dict[str, int] = {}
        token = _CHAT_COUNTS.set(counts)
        try:
            chunks = create(self, *args, **kwargs)
        finally:
            _CHAT_COUNTS.reset(token)
        return _ending_with_usage(chunks, counts, chat)

    return wrapper


def _ending_with_usage(chunks: Iterator[Any], counts: dict[str, int], chat: bool) -> Iterator[Any]:
    last: dict[str, Any] = {}
    for chunk in chunks:
        last = chunk
        yield chunk
    if last and counts:
        prompt, completion = counts["prompt_tokens"], counts["completion_tokens"]
        yield {
            "id": last.get("id"),
            "object": "chat.completion.chunk" if chat else "text_completion",
            "created": last.get("created"),
            "model": last.get("model"),
            "choices": [],
            "usage": {
                "prompt_tokens": prompt,
                "completion_tokens": completion,
                "total_tokens": prompt + completion,
            },
        }
