"""The OpenAI-compatible gateway: ``/v1/models``, chat, completions and embeddings.

A raw ASGI app (no framework on the hot path). For each request it
authenticates from memory, looks the ``model`` field up, checks the key's
model scopes, the types of the common fields and the rate limits, routes to
the ready replica with the fewest requests in flight, and passes the upstream
response through: a stream is forwarded chunk by chunk as it arrives, never
buffered. A client that goes away cancels the upstream request. Every answer
is counted in the metrics by status code, refusals included.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter
from typing import Any

import orjson
from starlette.types import Receive, Scope, Send

from llmos._lib.errors import LLMOSError, Reason
from llmos.auth.credentials import credential
from llmos.auth.errors import AuthError
from llmos.auth.rbac import Principal
from llmos.auth.service import AuthService
from llmos.gateway.errors import GatewayError
from llmos.gateway.fields import check
from llmos.gateway.limits import RateLimiter
from llmos.gateway.relay import DisconnectWatch, Exchange, relay
from llmos.gateway.table import Route, RoutingTable, model_not_found
from llmos.gateway.upstream import Upstreams
from llmos.gateway.usage import Usage

log = logging.getLogger(__name__)

ROUTES = {"/v1/chat/completions", "/v1/completions", "/v1/embeddings"}
_JSON = [(b"content-type", b"application/json")]


class Gateway:
    def __init__(
        self,
        auth: AuthService,
        table: RoutingTable,
        usage: Usage,
        *,
        max_body: int = 16 * 1024 * 1024,
    ) -> None:
        self.auth = auth
        self.table = table
        table.cache_until_changed(auth.global_roles, auth.role_templates, auth.bindings)
        self.usage = usage
        self.limits = RateLimiter()
        self.max_body = max_body
        self.upstreams = Upstreams()
        self._loop: asyncio.AbstractEventLoop | None = None

    async def close(self) -> None:
        self.upstreams.close()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await self._handle(scope, receive, send)
        except GatewayError as exc:
            await _reply(send, exc.status, exc.body(), exc.headers())

    async def _principal(self, scope: Scope) -> Principal:
        try:
            who = await self.auth.authenticate(credential(scope["headers"], scope["method"]))
        except LLMOSError as exc:
            status = 403 if exc.reason == Reason.FORBIDDEN else 401
            message = str(exc)
            if isinstance(exc, AuthError) and exc.problem:  # advice for API clients instead
                message = (
                    f"{exc.problem}: send an LLMOS API key (`llmos apikeys create`, or the "
                    "dashboard's Account page) as 'Authorization: Bearer KEY'"
                )
            raise GatewayError(status, message, code="invalid_api_key") from exc
        if who.must_change_password:
            raise GatewayError(403, f"user {who.user!r} must set a new password first")
        return who

    async def _handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        # The metrics label of what is refused here: a route's name once the request has
        # one, never the client's ``model`` string (that would make series without end).
        label = ""
        try:
            path, method = scope["path"], scope["method"]
            if path == "/v1/models" or path.startswith("/v1/models/"):
                if method != "GET":
                    raise GatewayError(405, f"{method} is not allowed on {path}: use GET")
                who = await self._principal(scope)
                model = path.removeprefix("/v1/models").removeprefix("/")
                if model:  # one model, OpenAI's "retrieve"; its id may hold a '/'
                    await _reply(send, 200, orjson.dumps(self._model(who, model)), _JSON)
                else:
                    await self._models(who, send)
                self.usage.answered("", 200)
                return
            if path not in ROUTES:
                raise GatewayError(
                    404,
                    f"unknown route {path}: the gateway serves /v1/models[/MODEL], "
                    + ", ".join(sorted(ROUTES)),
                )
            if method != "POST":
                raise GatewayError(405, f"{method} is not allowed on {path}: use POST")
            who = await self._principal(scope)
            raw = await self._read_body(scope, receive)
            request = _parse(raw)
            model = request["model"]
            route = self.table.lookup(model, who)
            label = route.qualified
            if not _may_use(who, route):
                raise GatewayError(
                    403,
                    f"this API key may not use model {model!r} "
                    f"(its scopes: {', '.join(who.scopes)})",
                    code="model_not_allowed",
                    param="model",
                )
            check(path, request)
            refusal = route.refuses(path)
            if refusal:
                raise GatewayError(
                    400,
                    f"model {route.served_name!r} does not serve {path}: {refusal}",
                    code="unsupported_endpoint",
                    param="model",
                )
            if not route.endpoints and route.stopped:
                raise GatewayError(
                    503,
                    f"model {route.served_name!r} is scaled to 0 replicas: scale it up to "
                    f"serve it (llmos scale ms {route.name} -n {route.namespace} --replicas 1)",
                    code="model_not_ready",
                )
            if not route.endpoints:
                raise GatewayError(
                    503,
                    f"model {route.served_name!r} has no ready replica yet: retry shortly",
                    code="model_not_ready",
                    retry_after=5,
                )
            self._check_limits(who)
        except GatewayError as exc:
            self.usage.answered(label, exc.status)
            raise
        except Exception:
            self.usage.answered(label, 500)
            raise
        stream = bool(request.get("stream"))
        counted = stream and path != "/v1/embeddings" and route.stream_usage
        options = request.get("stream_options")
        unasked = (
            counted
            and (options is None or isinstance(options, dict))
            and not (options and options.get("include_usage") is True)
        )
        if unasked:  # ask anyway, for usage and token limits; the client does not see it
            request["stream_options"] = {**(options or {}), "include_usage": True}
        if model != route.served_name:
            request["model"] = route.served_name
        if unasked or model != route.served_name:
            raw = orjson.dumps(request)
        await self._forward(receive, send, who, route, path, raw, stream, unasked)

    def _check_limits(self, who: Principal) -> None:
        token = self.auth.tokens.get(who.token_name)
        spec = (token or {}).get("spec") or {}
        rpm, tpm = spec.get("requestsPerMinute"), spec.get("tokensPerMinute")
        if not rpm and not tpm:
            return
        wait = self.limits.admit(who.token_name, rpm, tpm)
        if wait:
            raise GatewayError(
                429,
                f"rate limit of this API key reached ({rpm or '-'} requests/min, "
                f"{tpm or '-'} tokens/min): retry in {wait:.1f} s",
                code="rate_limit_exceeded",
                retry_after=wait,
            )

    async def _read_body(self, scope: Scope, receive: Receive) -> bytes:
        for name, value in scope["headers"]:
            if name == b"content-length" and value.isdigit() and int(value) > self.max_body:
                raise GatewayError(413, f"the request body is larger than {self.max_body} bytes")
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                raise GatewayError(400, "the client went away")
            body = message.get("body", b"")
            size += len(body)
            if size > self.max_body:
                raise GatewayError(413, f"the request body is larger than {self.max_body} bytes")
            chunks.append(body)
            if not message.get("more_body"):
                return b"".join(chunks)

    async def _models(self, who: Principal, send: Send) -> None:
        visible = self.table.visible(who)
        shared = _shared_names(visible)
        data = [
            _model_object(route, route.served_name in shared)
            for route in sorted(visible, key=lambda r: r.qualified)
            if _may_use(who, route)
        ]
        await _reply(send, 200, orjson.dumps({"object": "list", "data": data}), _JSON)

    def _model(self, who: Principal, model: str) -> dict[str, Any]:
        """One model the caller may use, by the name a request gives it; else a 404, as for
        a model it may not see (a key's scopes hide it here as in the list)."""
        route = self.table.lookup(model, who)
        if not _may_use(who, route):
            raise model_not_found(model)
        return _model_object(route, route.served_name in _shared_names(self.table.visible(who)))

    async def _forward(
        self,
        receive: Receive,
        send: Send,
        who: Principal,
        route: Route,
        path: str,
        raw: bytes,
        stream: bool,
        unasked_usage: bool = False,
    ) -> None:
        loop = self._loop
        if loop is None:
            loop = self._loop = asyncio.get_running_loop()
        endpoint = route.pick()
        endpoint.outstanding += 1
        exchange = Exchange()
        watch = DisconnectWatch(loop, receive)
        try:
            await relay(
                self.upstreams,
                send,
                endpoint.url,
                path,
                raw,
                stream,
                exchange,
                endpoint.authorization,
                unasked_usage,
            )
        except asyncio.CancelledError:
            if not watch.swallow():
                raise
            if not exchange.delivered:
                exchange.code = 499  # the client left; the upstream request was dropped
        finally:
            watch.finished = True
            endpoint.outstanding -= 1
            self.usage.record(
                route.qualified,
                who.user,
                who.token_name if who.token_type == "apikey" else "session",
                exchange.code,
                time.perf_counter() - exchange.started,
                exchange.prompt,
                exchange.completion,
                exchange.first,
            )
            used = exchange.prompt + exchange.completion
            if used:
                self.limits.charge_tokens(who.token_name, used)


def _shared_names(routes: list[Route]) -> set[str]:
    """Served names that more than one of ``routes`` has. Given what the caller sees (as
    the table's lookup judges it, a key's scopes aside), the name alone is ambiguous."""
    counts = Counter(r.served_name for r in routes)
    return {name for name, count in counts.items() if count > 1}


def _model_object(route: Route, shared: bool = False) -> dict[str, Any]:
    """A model as OpenAI's ``/v1/models`` shows one, with where LLMOS serves it. Its ``id``
    is what a request sends: the served name, or ``namespace/name`` where several
    namespaces serve that name (the name alone is refused as ambiguous)."""
    return {
        "id": route.qualified if shared else route.served_name,
        "object": "model",
        "created": route.created,
        "owned_by": route.namespace,
        "llmos": {"namespace": route.namespace, "name": route.name, "ready": bool(route.endpoints)},
    }


def _may_use(who: Principal, route: Route) -> bool:
    """Whether the key's scopes name the route, by its served name or as ``namespace/name``."""
    scopes = who.scopes
    return "*" in scopes or route.served_name in scopes or route.qualified in scopes


def _parse(raw: bytes) -> dict[str, Any]:
    try:
        request = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise GatewayError(
            400, f"the body is not valid JSON: {exc.msg} (line {exc.lineno}, column {exc.colno})"
        ) from exc
    if not isinstance(request, dict):
        raise GatewayError(400, "the body must be a JSON object")
    model = request.get("model")
    if not isinstance(model, str) or not model:
        raise GatewayError(400, "'model' is required and must be a string", param="model")
    return request


async def _reply(send: Send, status: int, body: bytes, headers: list[tuple[bytes, bytes]]) -> None:
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
