"""Reverse proxy to workloads that listen on 127.0.0.1: HTTP and WebSocket, behind LLMOS auth.

``/notebooks/{ns}/{name}/...`` (and, with Ray, ``/mlclusters/...``) reach the
workload's own web server. Each request is authenticated like any API call
(bearer token or the dashboard's cookie), authorized by RBAC (``create`` on
``{plural}/proxy``: reaching a notebook means running code as it, so
read-only users may not), and forwarded with the LLMOS credentials removed and
the workload's own secret added, so a workload never sees a user's token
and a browser never sees the workload's secret. Responses and WebSocket
messages are passed through as they come, never buffered whole.

HTTP goes through the gateway's own HTTP/1.1 client
(:mod:`llmos.gateway.upstream`): what arrives from the workload goes on in
pieces of up to :data:`READ_HIGH_WATER`, in whole TLS records while more of a
reply of known length is to come, which is what a large download through TLS
needs (``docs/benchmarks.md``). WebSockets use aiohttp's client.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from urllib.parse import urlsplit

import aiohttp
import orjson
import yarl
from starlette.types import Receive, Scope, Send

from llmos._lib.errors import LLMOSError, Reason
from llmos.api.errors import HTTP_STATUS, status_body
from llmos.auth.credentials import CSRF_HEADER, SESSION_COOKIE, credential
from llmos.auth.errors import forbidden
from llmos.auth.rbac import Principal
from llmos.auth.rbac import Request as AuthzRequest
from llmos.auth.service import AuthService
from llmos.gateway.upstream import Connection, UpstreamError, Upstreams

log = logging.getLogger(__name__)

HOP_BY_HOP = frozenset(
    {
        b"connection",
        b"keep-alive",
        b"proxy-authenticate",
        b"proxy-authorization",
        b"te",
        b"trailer",
        b"transfer-encoding",
        b"upgrade",
        b"host",
        b"authorization",
    }
)
# Jupyter's pages send their own anti-CSRF header on writes; it counts as ours.
PROXY_CSRF = frozenset({CSRF_HEADER.encode(), b"x-xsrftoken"})
# Read ahead of the client by at most this much of a reply; each piece sent on is at most
# about this big. 64 KiB and 1 MiB measured the same within the noise (docs/benchmarks.md).
READ_HIGH_WATER = 256 * 1024
# A reply of known length goes on in whole TLS records (16 KiB of data each, the most a record
# holds) until its last piece: a piece that ends in a part-filled record costs the client a
# read of its own, which measured as a fifth more client CPU on a download (docs/benchmarks.md).
TLS_RECORD = 16 * 1024
# The longest a workload may take to answer a WebSocket upgrade. Jupyter holds a kernel's
# upgrade until the kernel answers kernel_info, for up to its kernel_info_timeout (60 s).
WS_HANDSHAKE_SECONDS = 90.0


@dataclass(frozen=True)
class Upstream:
    """Where one request goes: ``base`` (``http://127.0.0.1:PORT``) plus ``path``."""

    base: str
    path: str
    headers: list[tuple[str, str]] = field(default_factory=list)
    # Cookies the workload's secret travels in; they replace any of the same name the browser sent.
    cookies: dict[str, str] = field(default_factory=dict)
    on_activity: Callable[[], None] = lambda: None


# (principal, namespace, name, path after the prefix) -> the upstream, or an LLMOSError.
Resolver = Callable[[Principal, str, str, str], Awaitable[Upstream]]


@dataclass(frozen=True)
class Route:
    group: str
    plural: str
    resolve: Resolver
    # Stops what the route started (background writes), when the proxy closes.
    close: Callable[[], Awaitable[None]] | None = None


class WorkloadProxy:
    def __init__(
        self,
        auth: AuthService,
        routes: dict[str, Route],
        ws_handshake_seconds: float = WS_HANDSHAKE_SECONDS,
    ) -> None:
        self.auth = auth
        self.routes = routes  # by first path segment, e.g. "notebooks"
        self.ws_handshake_seconds = ws_handshake_seconds
        self._session: aiohttp.ClientSession | None = None  # WebSockets
        self.upstreams = Upstreams(
            connect_timeout=10, keep_headers=True, high_water=READ_HIGH_WATER
        )

    def handles(self, path: str) -> bool:
        return path.split("/", 2)[1] in self.routes if path.count("/") >= 2 else False

    @property
    def session(self) -> aiohttp.ClientSession:
        if self._session is None:
            self._session = aiohttp.ClientSession(
                auto_decompress=False,
                timeout=aiohttp.ClientTimeout(total=None, sock_connect=10),
                connector=aiohttp.TCPConnector(limit=0),
            )
        return self._session

    async def close(self) -> None:
        for route in self.routes.values():
            if route.close is not None:
                await route.close()
        self.upstreams.close()
        if self._session is not None:
            await self._session.close()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope["path"]
        if scope["type"] == "http" and path.count("/") == 3 and not path.endswith("/"):
            # /notebooks/ns/name -> /notebooks/ns/name/: the apps behind use relative URLs.
            query = scope.get("query_string", b"")
            target = path.encode() + b"/" + (b"?" + query if query else b"")
            await send(
                {"type": "http.response.start", "status": 308, "headers": [(b"location", target)]}
            )
            await send({"type": "http.response.body", "body": b""})
            return
        try:
            upstream = await self._resolve(scope)
        except LLMOSError as exc:
            await _refuse(scope, send, exc)
            return
        upstream.on_activity()
        if scope["type"] == "websocket":
            await self._websocket(scope, receive, send, upstream)
        else:
            await self._http(scope, receive, send, upstream)

    async def _resolve(self, scope: Scope) -> Upstream:
        parts = scope["path"].split("/", 4)  # "", prefix, namespace, name, rest
        route = self.routes[parts[1]]
        if len(parts) < 4 or not parts[2] or not parts[3]:
            raise LLMOSError(
                f"use /{parts[1]}/NAMESPACE/NAME/ to reach a {route.plural[:-1]}",
                Reason.NOT_FOUND,
            )
        namespace, name = parts[2], parts[3]
        method = "GET" if scope["type"] == "websocket" else scope["method"]
        if scope["type"] == "websocket":
            _check_origin(scope)
        who = await self.auth.authenticate(credential(scope["headers"], method, PROXY_CSRF))
        if who.must_change_password:
            raise forbidden(f"user {who.user!r} must set a new password first")
        request = AuthzRequest("create", route.group, f"{route.plural}/proxy", namespace, name)
        if not self.auth.authorizer.allows(who, request, True):
            raise forbidden(
                f"user {who.user!r} may not open {route.plural} {name!r} in namespace {namespace!r}"
            )
        rest = "/" + (parts[4] if len(parts) > 4 else "")
        return await route.resolve(who, namespace, name, rest)

    def _headers(self, scope: Scope, upstream: Upstream) -> list[tuple[bytes, bytes]]:
        """The request's headers as forwarded: hop-by-hop and LLMOS credentials out, the secret in."""
        headers: list[tuple[bytes, bytes]] = []
        cookies: list[str] = []
        host = b""
        for raw_name, raw_value in scope["headers"]:
            if raw_name == b"host":
                host = raw_value
            if raw_name in HOP_BY_HOP or raw_name.startswith(b"sec-websocket"):
                continue
            if raw_name == b"cookie":
                value = raw_value.decode("latin-1")
                cookies += _cookies_without(value, {SESSION_COOKIE, *upstream.cookies})
                continue
            headers.append((raw_name, raw_value))
        cookies += [f"{name}={value}" for name, value in upstream.cookies.items()]
        if cookies:
            headers.append((b"cookie", "; ".join(cookies).encode("latin-1")))
        client = scope.get("client") or ("", 0)
        headers += [
            (b"x-forwarded-host", host),
            (b"x-forwarded-proto", b"https"),
            (b"x-forwarded-for", str(client[0]).encode("latin-1")),
        ]
        return headers + [(k.encode("latin-1"), v.encode("latin-1")) for k, v in upstream.headers]

    def _request_head(self, scope: Scope, up: Upstream, chunked: bool) -> bytes:
        query = scope.get("query_string", b"").decode("latin-1")
        # Quoted as aiohttp quoted it before: what is already %-escaped stays so.
        target = yarl.URL(up.base + up.path + (f"?{query}" if query else "")).raw_path_qs
        lines = [
            f"{scope['method']} {target} HTTP/1.1".encode("latin-1"),
            b"host: " + self.upstreams.origin(up.base).host_header,
        ]
        lines += [name + b": " + value for name, value in self._headers(scope, up)]
        if chunked:
            lines.append(b"transfer-encoding: chunked")
        return b"\r\n".join(lines) + b"\r\n\r\n"

    async def _http(self, scope: Scope, receive: Receive, send: Send, up: Upstream) -> None:
        names = {name for name, _ in scope["headers"]}
        has_body = b"content-length" in names or b"transfer-encoding" in names
        # uvicorn hands over a chunked body unframed: it goes on chunked again.
        chunked = has_body and b"content-length" not in names
        head = self._request_head(scope, up, chunked)
        body_done = asyncio.Event()
        if not has_body:
            body_done.set()
        started = False

        async def body(conn: Connection) -> None:
            while True:
                message = await receive()
                if message["type"] == "http.disconnect":
                    raise ConnectionResetError("client went away")
                chunk = message.get("body", b"")
                if chunk:
                    conn.write(b"%x\r\n%s\r\n" % (len(chunk), chunk) if chunked else chunk)
                    await conn.drain()
                if not message.get("more_body"):
                    if chunked:
                        conn.write(b"0\r\n\r\n")
                    body_done.set()
                    return

        async def exchange(conn: Connection) -> Connection:
            """Send the request on ``conn`` and wait for the reply's headers."""
            try:
                conn.no_body = scope["method"] == "HEAD"
                conn.write(head)
                if has_body:
                    await body(conn)
                await conn.headers()
            except BaseException:
                conn.close()
                raise
            return conn

        async def request() -> Connection:
            conn = await self.upstreams.connect(up.base)
            try:
                return await exchange(conn)
            except UpstreamError:
                if has_body or not conn.reused or conn.received:
                    raise
            # The workload closed this kept-alive connection as it was taken: once more, anew.
            return await exchange(await self.upstreams.open(up.base))

        async def relay() -> None:
            nonlocal started
            conn = await request()
            done = False
            try:
                headers = [h for h in conn.header_list if h[0] not in HOP_BY_HOP]
                await send(
                    {"type": "http.response.start", "status": conn.status, "headers": headers}
                )
                started = True
                sized = any(name == b"content-length" for name, _ in conn.header_list)
                multiple = TLS_RECORD if sized else 1
                more = True
                while more:
                    chunk = await conn.chunk(multiple)
                    # The end goes out with the last piece when both have arrived.
                    more = not conn.complete
                    up.on_activity()
                    await send({"type": "http.response.body", "body": chunk, "more_body": more})
                done = True
            finally:
                if done:
                    self.upstreams.release(up.base, conn)
                else:
                    conn.close()  # the workload sees the client go

        async def disconnected() -> None:
            await body_done.wait()
            while (await receive())["type"] != "http.disconnect":
                pass

        relaying = asyncio.create_task(relay())
        watching = asyncio.create_task(disconnected())
        try:
            done, _ = await asyncio.wait({relaying, watching}, return_when=asyncio.FIRST_COMPLETED)
            if relaying in done:
                relaying.result()
        except (UpstreamError, ConnectionResetError, OSError) as exc:
            log.info("proxy %s%s: %s", up.base, up.path, exc)
            if not started:
                with contextlib.suppress(Exception):
                    await _send_error(
                        send,
                        LLMOSError(
                            f"the workload did not answer: {exc}", Reason.SERVICE_UNAVAILABLE
                        ),
                    )
        finally:
            for task in (relaying, watching):
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task

    async def _websocket(self, scope: Scope, receive: Receive, send: Send, up: Upstream) -> None:
        query = scope.get("query_string", b"").decode("latin-1")
        url = up.base.replace("http", "ws", 1) + up.path + (f"?{query}" if query else "")
        if (await receive())["type"] != "websocket.connect":
            return
        try:
            async with asyncio.timeout(self.ws_handshake_seconds):
                ws = await self.session.ws_connect(
                    url,
                    headers=[
                        (k.decode("latin-1"), v.decode("latin-1"))
                        for k, v in self._headers(scope, up)
                    ],
                    protocols=tuple(scope.get("subprotocols") or ()),
                    max_msg_size=0,
                    autoping=True,
                )
        except (aiohttp.ClientError, OSError) as exc:  # the bound's TimeoutError is an OSError
            log.info("proxy websocket %s: %s", url, exc or "no answer to the upgrade")
            await send({"type": "websocket.close", "code": 1011})
            return
        async with ws:
            await send({"type": "websocket.accept", "subprotocol": ws.protocol})

            async def client_to_upstream() -> None:
                while True:
                    message = await receive()
                    if message["type"] == "websocket.disconnect":
                        return
                    up.on_activity()
                    if message.get("text") is not None:
                        await ws.send_str(message["text"])
                    elif message.get("bytes") is not None:
                        await ws.send_bytes(message["bytes"])

            async def upstream_to_client() -> None:
                async for message in ws:
                    up.on_activity()
                    if message.type == aiohttp.WSMsgType.TEXT:
                        await send({"type": "websocket.send", "text": message.data})
                    elif message.type == aiohttp.WSMsgType.BINARY:
                        await send({"type": "websocket.send", "bytes": message.data})
                    else:
                        break
                with contextlib.suppress(Exception):
                    await send({"type": "websocket.close", "code": ws.close_code or 1000})

            tasks = {
                asyncio.create_task(client_to_upstream()),
                asyncio.create_task(upstream_to_client()),
            }
            _, pending = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
            for task in pending:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task


def _cookies_without(cookie_header: str, names: set[str]) -> list[str]:
    return [
        part.strip()
        for part in cookie_header.split(";")
        if part.strip() and part.strip().partition("=")[0] not in names
    ]


def _check_origin(scope: Scope) -> None:
    """A browser's WebSocket from another site's page must not ride on the user's cookie."""
    headers = dict(scope["headers"])
    origin = headers.get(b"origin")
    if origin is None:
        return  # not a browser: it authenticates with a bearer token anyway
    host = headers.get(b"host", b"").decode("latin-1")
    if urlsplit(origin.decode("latin-1")).netloc != host:
        raise forbidden(f"WebSocket from origin {origin.decode('latin-1')!r} refused")


async def _send_error(send: Send, error: LLMOSError) -> None:
    body = orjson.dumps(status_body(error))
    await send(
        {
            "type": "http.response.start",
            "status": HTTP_STATUS[error.reason],
            "headers": [(b"content-type", b"application/json")],
        }
    )
    await send({"type": "http.response.body", "body": body})


async def _refuse(scope: Scope, send: Send, error: LLMOSError) -> None:
    if scope["type"] == "websocket":
        # Before accept, a close is answered with HTTP 403 by the server.
        await send({"type": "websocket.close", "code": 1008})
        return
    await _send_error(send, error)
