"""Reading request bodies: size limits, JSON or YAML, and clear errors for each."""

from __future__ import annotations

import copy
from typing import Any

import jsonpatch
import jsonpointer
import orjson
import yaml
from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from llmos._lib.errors import LLMOSError, Reason
from llmos.api.errors import error_response, media_type

JSON_TYPES = {"application/json", "application/merge-patch+json", ""}
YAML_TYPES = {"application/yaml", "application/x-yaml", "text/yaml", "text/x-yaml"}


def too_large(limit: int) -> LLMOSError:
    return LLMOSError(
        f"the request body is larger than the limit of {limit} bytes",
        Reason.REQUEST_TOO_LARGE,
    )


class BodyLimit:
    """ASGI middleware: refuse bodies over ``limit`` bytes with 413, even when chunked."""

    def __init__(self, app: ASGIApp, limit: int, exempt_prefixes: tuple[str, ...] = ()) -> None:
        self.app = app
        self.limit = limit
        self.exempt = exempt_prefixes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"].startswith(self.exempt):
            await self.app(scope, receive, send)
            return
        for name, value in scope.get("headers", ()):
            if name == b"content-length" and value.isdigit() and int(value) > self.limit:
                await error_response(too_large(self.limit))(scope, receive, send)
                return
        seen = 0

        async def counting_receive() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.limit:
                    raise too_large(self.limit)
            return message

        await self.app(scope, counting_receive, send)


def _reject_aliases(text: str) -> None:
    for event in yaml.parse(text, Loader=yaml.SafeLoader):
        if isinstance(event, yaml.AliasEvent):
            raise LLMOSError(
                "YAML anchors and aliases are not accepted: write the values out",
                Reason.BAD_REQUEST,
            )


def parse(raw: bytes, content_type: str) -> Any:
    """Decode ``raw`` as JSON or YAML by its content type."""
    media = media_type(content_type)
    if not raw.strip():
        raise LLMOSError(
            "the request body is empty: send a JSON or YAML object", Reason.BAD_REQUEST
        )
    if media in YAML_TYPES:
        try:
            text = raw.decode()
            _reject_aliases(text)
            return yaml.safe_load(text)
        except UnicodeDecodeError as exc:
            raise LLMOSError("the YAML body is not valid UTF-8", Reason.BAD_REQUEST) from exc
        except yaml.YAMLError as exc:
            where = getattr(exc, "problem_mark", None)
            at = f" at line {where.line + 1}, column {where.column + 1}" if where else ""
            problem = getattr(exc, "problem", None) or str(exc)
            raise LLMOSError(
                f"the body is not valid YAML{at}: {problem}", Reason.BAD_REQUEST
            ) from exc
    if media in JSON_TYPES or media.endswith("+json"):
        try:
            return orjson.loads(raw)
        except orjson.JSONDecodeError as exc:
            raise LLMOSError(
                f"the body is not valid JSON at line {exc.lineno}, column {exc.colno}: {exc.msg}",
                Reason.BAD_REQUEST,
            ) from exc
    raise LLMOSError(
        f"content type {media!r} is not supported: send application/json or application/yaml",
        Reason.UNSUPPORTED_MEDIA_TYPE,
    )


async def read(request: Request) -> Any:
    return parse(await request.body(), request.headers.get("content-type", ""))


def merge_patch(target: Any, patch: Any) -> Any:
    """Apply an RFC 7386 JSON merge patch."""
    if not isinstance(patch, dict):
        return patch
    result = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merge_patch(result.get(key), value)
    return result


def json_patch_operations(document: Any) -> list[Any]:
    """A request body as an RFC 6902 JSON Patch: a list of operations, each checked."""
    if not isinstance(document, list):
        raise LLMOSError(
            f"a JSON Patch is a list of operations like "
            f'[{{"op": "replace", "path": "/spec/replicas", "value": 2}}], '
            f"not {type(document).__name__}",
            Reason.BAD_REQUEST,
        )
    try:
        jsonpatch.JsonPatch(document)
    except (jsonpatch.InvalidJsonPatch, jsonpointer.JsonPointerException, TypeError) as exc:
        raise LLMOSError(f"the JSON Patch is invalid: {exc}", Reason.BAD_REQUEST) from exc
    return document


def json_patch(target: dict[str, Any], operations: list[Any]) -> dict[str, Any]:
    """Apply ``operations`` to a copy of ``target``; 422 naming the one that does not apply.

    The operations are copied too: jsonpatch inserts an operation's value itself, which a
    later operation may then change, and a patch retried on a race must start afresh."""
    try:
        result = jsonpatch.JsonPatch(copy.deepcopy(operations)).apply(target)
    except jsonpatch.JsonPatchTestFailed as exc:
        raise LLMOSError(f"the JSON Patch's test failed: {exc}", Reason.INVALID) from exc
    except (
        jsonpatch.JsonPatchConflict,
        jsonpatch.InvalidJsonPatch,
        jsonpointer.JsonPointerException,
    ) as exc:
        raise LLMOSError(f"the JSON Patch does not apply: {exc}", Reason.INVALID) from exc
    if not isinstance(result, dict):
        raise LLMOSError(
            "the JSON Patch would make the object something other than a mapping",
            Reason.INVALID,
        )
    return result
