"""Gateway errors in the OpenAI format: ``{"error": {"message", "type", "param", "code"}}``."""

from __future__ import annotations

import re
from typing import Any

import orjson

_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    405: "invalid_request_error",
    413: "invalid_request_error",
    429: "rate_limit_error",
    502: "api_error",
    503: "service_unavailable",
}


class GatewayError(Exception):
    def __init__(
        self,
        status: int,
        message: str,
        code: str | None = None,
        param: str | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.code = code
        self.param = param
        self.retry_after = retry_after

    def body(self) -> bytes:
        return orjson.dumps(
            {
                "error": {
                    "message": self.message,
                    "type": _TYPES.get(self.status, "api_error"),
                    "param": self.param,
                    "code": self.code,
                }
            }
        )

    def headers(self) -> list[tuple[bytes, bytes]]:
        headers = [(b"content-type", b"application/json")]
        if self.retry_after is not None:
            headers.append((b"retry-after", str(max(1, int(self.retry_after + 0.999))).encode()))
        if self.status == 401:
            headers.append((b"www-authenticate", b'Bearer realm="llmos"'))
        return headers


# Where an engine's message turns into a Python traceback, and file paths anywhere in it.
_TRACEBACK = re.compile(r'^\s*(?:Traceback \(|File ")', re.MULTILINE)
_PATH = re.compile(r"(?:[A-Za-z]:)?[\\/][\w.@+~-]+(?:[\\/][\w.@+~-]*)+")
_MESSAGE_CHARS = 1000


def engine_failure(status: int, body: bytes) -> GatewayError:
    """An engine's 5xx reply, fit for the client: its own message without traceback or paths.

    The engine's message is kept up to its first traceback line, with file paths
    replaced by ``<path>``; the full body is for the server's log, not the client.
    """
    message = "the model server failed on this request"
    detail = _engine_message(body)
    if detail:
        detail = _PATH.sub("<path>", _TRACEBACK.split(detail, 1)[0]).strip()
        if len(detail) > _MESSAGE_CHARS:
            detail = detail[:_MESSAGE_CHARS] + "…"
        if detail:
            message = f"{message}: {detail}"
    return GatewayError(status, message, code="engine_error")


def _engine_message(body: bytes) -> str:
    """The message of an OpenAI, vLLM, TGI or FastAPI error body, or ``""``."""
    try:
        reply: Any = orjson.loads(body)
    except orjson.JSONDecodeError:
        return ""
    if not isinstance(reply, dict):
        return ""
    error = reply.get("error")
    if isinstance(error, dict):
        error = error.get("message")
    for text in (error, reply.get("message"), reply.get("detail")):
        if isinstance(text, str) and text:
            return text
    return ""
