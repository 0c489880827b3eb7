"""The one place where error reasons become HTTP statuses and Status bodies.

Every error leaves the API as a Kubernetes ``Status`` object: a message in
plain language, a stable ``reason``, the HTTP ``code``, and ``details.causes``
naming each offending field.
"""

from __future__ import annotations

import logging
from typing import Any

import orjson
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException
from starlette.responses import Response

from llmos._lib.errors import LLMOSError, Reason
from llmos.resources.validation import causes_of

log = logging.getLogger(__name__)

HTTP_STATUS: dict[Reason, int] = {
    Reason.BAD_REQUEST: 400,
    Reason.UNAUTHORIZED: 401,
    Reason.FORBIDDEN: 403,
    Reason.NOT_FOUND: 404,
    Reason.METHOD_NOT_ALLOWED: 405,
    Reason.ALREADY_EXISTS: 409,
    Reason.CONFLICT: 409,
    Reason.GONE: 410,
    Reason.REQUEST_TOO_LARGE: 413,
    Reason.UNSUPPORTED_MEDIA_TYPE: 415,
    Reason.INVALID: 422,
    Reason.TOO_MANY_REQUESTS: 429,
    Reason.INTERNAL: 500,
    Reason.SERVICE_UNAVAILABLE: 503,
}
_REASON_OF_CODE = {code: reason for reason, code in HTTP_STATUS.items()}


def status_body(error: LLMOSError) -> dict[str, Any]:
    code = HTTP_STATUS[error.reason]
    details: dict[str, Any] = {}
    if error.name:
        details["name"] = error.name
    if error.kind:
        details["kind"] = error.kind
    if error.causes:
        details["causes"] = [
            {"field": c.field, "message": c.message, "reason": c.reason} for c in error.causes
        ]
    if error.retry_after is not None:
        details["retryAfterSeconds"] = max(1, int(error.retry_after + 0.999))
    body: dict[str, Any] = {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": error.message,
        "reason": error.reason.value,
        "code": code,
    }
    if details:
        body["details"] = details
    return body


def error_response(error: LLMOSError) -> Response:
    body = status_body(error)
    headers = {}
    if error.retry_after is not None:
        headers["Retry-After"] = str(body["details"]["retryAfterSeconds"])
    if error.reason == Reason.UNAUTHORIZED:
        headers["WWW-Authenticate"] = 'Bearer realm="llmos"'
    return Response(orjson.dumps(body), body["code"], headers, media_type="application/json")


def media_type(content_type: str) -> str:
    """``application/json`` of ``Application/JSON; charset=utf-8``."""
    return content_type.split(";", 1)[0].strip().lower()


def _from_validation(request: Request, exc: RequestValidationError) -> LLMOSError:
    items = list(exc.errors())
    for item in items:
        if item.get("type") == "json_invalid":
            return LLMOSError(
                f"the body is not valid JSON: {item.get('ctx', {}).get('error', '')}".strip(),
                Reason.BAD_REQUEST,
            )
    if any(tuple(item.get("loc", ())) == ("body",) for item in items):
        # The body as a whole is missing or no JSON object: say what to send.
        media = media_type(request.headers.get("content-type", ""))
        if media and media != "application/json" and not media.endswith("+json"):
            return LLMOSError(
                f"content type {media!r} is not supported: send application/json",
                Reason.UNSUPPORTED_MEDIA_TYPE,
            )
        return LLMOSError("the body must be a JSON object", Reason.BAD_REQUEST)
    causes = causes_of(items, skip="body")
    message = causes[0].message if causes else "the request is invalid"
    return LLMOSError(message, Reason.INVALID if causes else Reason.BAD_REQUEST, causes=causes)


def install(app: FastAPI) -> None:
    """Register the handlers that turn every failure into a Status response."""

    @app.exception_handler(LLMOSError)
    async def _llmos(_: Request, exc: LLMOSError) -> Response:
        return error_response(exc)

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> Response:
        return error_response(_from_validation(request, exc))

    @app.exception_handler(HTTPException)
    async def _http(request: Request, exc: HTTPException) -> Response:
        reason = _REASON_OF_CODE.get(exc.status_code, Reason.BAD_REQUEST)
        if exc.status_code == 404:
            message = f"no such path: {request.url.path}"
        elif exc.status_code == 405:
            message = f"method {request.method} is not allowed on {request.url.path}"
        else:
            message = str(exc.detail)
        return error_response(LLMOSError(message, reason))

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> Response:
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        return error_response(
            LLMOSError("internal error: the server log has the details", Reason.INTERNAL)
        )
