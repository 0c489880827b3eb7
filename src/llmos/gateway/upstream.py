"""The gateway's HTTP/1.1 client to upstream engines: keep-alive pools on asyncio protocols.

:class:`llmos.gateway.proxy.Gateway` sends every proxied request through one
:class:`Upstreams`. Each request takes an idle keep-alive connection to its
endpoint (or opens one), writes the request in one write, and reads the reply
with httptools' parser as it arrives: the whole body for JSON, or chunk by
chunk for a stream. A reply read to its end gives the connection back to the
pool; a reply that is abandoned (the client left, the upstream broke) closes
it, which is how the upstream learns to stop generating.

It replaces aiohttp on this path because it costs far less CPU per request
(``docs/benchmarks.md``): it does only what the gateway needs, POST with a
body, to ``http`` or ``https`` endpoints, with no redirects, cookies,
compression or retries. Like aiohttp for a POST, it never resends a request.

:class:`llmos.api.workload_proxy.WorkloadProxy` uses it too, for any method:
it writes its own request head (:meth:`Connection.write`, with
:meth:`Connection.drain` for a streamed request body) and keeps the reply's
headers (``Upstreams(keep_headers=True)``). A large download then costs a
callback and a list append per read from the socket, instead of aiohttp's
stream reader and its copies.
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import cast
from urllib.parse import quote, urlsplit

import httptools

# Pause reading from the upstream while this much of a reply waits for a slow client.
HIGH_WATER = 256 * 1024
_HEADER_END = b"\r\n\r\n"


class UpstreamError(Exception):
    """The upstream was not reachable, or broke off or garbled its reply."""


@dataclass
class Origin:
    """Where one endpoint URL's requests go: the address, and each path's request head."""

    host: str
    port: int
    tls: bool
    prefix: str
    host_header: bytes
    heads: dict[tuple[str, bytes], bytes] = field(default_factory=dict)

    @classmethod
    def parse(cls, url: str) -> Origin:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise UpstreamError(f"the endpoint {url!r} is not an http:// or https:// URL")
        tls = parts.scheme == "https"
        host = parts.hostname
        default = 443 if tls else 80
        port = parts.port or default
        shown = f"[{host}]" if ":" in host else host
        if port != default:
            shown = f"{shown}:{port}"
        return cls(host, port, tls, parts.path.rstrip("/"), shown.encode("idna"))

    def head(self, path: str, authorization: bytes = b"") -> bytes:
        """The request line and headers for ``path``, up to the Content-Length value.

        ``authorization``, when given, is the ``Authorization`` header's value.
        """
        head = self.heads.get((path, authorization))
        if head is None:
            target = quote(self.prefix + path, safe="/%:@!$&'()*+,;=-._~")
            auth = b"Authorization: " + authorization + b"\r\n" if authorization else b""
            head = self.heads[(path, authorization)] = (
                f"POST {target} HTTP/1.1\r\n".encode()
                + b"Host: "
                + self.host_header
                + b"\r\n"
                + auth
                + b"Content-Type: application/json\r\nContent-Length: "
            )
        return head


class Connection(asyncio.Protocol):
    """One keep-alive connection, carrying one request and its reply at a time.

    The parser's callbacks fill in the reply; :meth:`body`, :meth:`chunk` and
    :meth:`headers` wait for it. At most one coroutine waits at a time.
    """

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        on_lost: Callable[[Connection], None],
        *,
        keep_headers: bool = False,
        high_water: int = HIGH_WATER,
    ):
        self.loop = loop
        self.on_lost = on_lost
        self.keep_headers = keep_headers
        self.high_water = high_water
        self.transport: asyncio.Transport | None = None
        self.parser = httptools.HttpResponseParser(self)
        self.closed = False
        self.idle_since = 0.0
        self.reused = False  # it carried a reply before: the upstream may have closed it since
        self._write_paused = False
        self._drained: asyncio.Future[None] | None = None
        self._begin()

    def _begin(self) -> None:
        self.status = 0
        self.content_type = b"application/json"
        self.header_done = False
        self.complete = False
        self.keep_alive = True
        self.framed = False
        self.no_body = False
        self.received = False
        # The reply's headers as sent (lower-case names), with ``keep_headers``.
        self.header_list: list[tuple[bytes, bytes]] = []
        self.error: UpstreamError | None = None
        self._chunks: list[bytes] = []
        self._buffered = 0
        self._paused = False
        self._waiter: asyncio.Future[None] | None = None

    # asyncio.Protocol

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports do not subclass asyncio.Transport, but have its methods.
        self.transport = cast(asyncio.Transport, transport)

    def data_received(self, data: bytes) -> None:
        self.received = True
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError as exc:
            self._fail(f"the replica sent a malformed HTTP reply ({exc})")
            self.close()

    def eof_received(self) -> bool:
        return False  # close our side too

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if self.header_done and not self.complete and not self.framed:
            self.on_message_complete()  # a body delimited by the end of the connection
        elif not self.complete:
            why = f" ({exc})" if exc else ""
            self._fail(f"the replica closed the connection{why}")
        self._wake_writer()
        self.on_lost(self)

    def pause_writing(self) -> None:
        self._write_paused = True

    def resume_writing(self) -> None:
        self._write_paused = False
        self._wake_writer()

    def _wake_writer(self) -> None:
        drained, self._drained = self._drained, None
        if drained is not None and not drained.done():
            drained.set_result(None)

    # httptools callbacks (only those defined here are called)

    def on_header(self, name: bytes, value: bytes) -> None:
        name = name.lower()
        if self.keep_headers:
            self.header_list.append((name, value))
        if name == b"content-type":
            self.content_type = value
        elif name in (b"content-length", b"transfer-encoding"):
            self.framed = True

    def on_headers_complete(self) -> None:
        self.status = self.parser.get_status_code()
        self.keep_alive = self.parser.should_keep_alive()
        if self.status < 200:
            self.header_list = []  # an interim reply's; the real one's follow
            self.framed = False
        else:
            self.header_done = True
            if self.no_body:
                # A reply to HEAD: the parser cannot know it has no body, so it
                # would wait for one; the connection is not used again.
                self.keep_alive = False
                self.complete = True
            self._wake()

    def on_body(self, body: bytes) -> None:
        if self.complete:
            return  # bytes after a reply to HEAD: the connection is closed after it
        self._chunks.append(body)
        self._buffered += len(body)
        if self._buffered > self.high_water and not self._paused and self.transport is not None:
            self._paused = True
            self.transport.pause_reading()
        self._wake()

    def on_message_complete(self) -> None:
        if not self.header_done:  # an interim 1xx reply: the real one follows
            return
        self.complete = True
        self._wake()

    # the request

    def send(self, head: bytes, body: bytes) -> None:
        assert self.transport is not None
        self.transport.write(b"%s%d\r\n\r\n%s" % (head, len(body), body))

    def write(self, data: bytes) -> None:
        """Write part of a request: its head (all of it), or a piece of its body."""
        if self.transport is None or self.closed:
            raise self.error or UpstreamError("the connection to the upstream is closed")
        self.transport.write(data)

    async def drain(self) -> None:
        """Wait until what was written has mostly gone out (for a large request body)."""
        while self._write_paused and not self.closed:
            self._drained = self.loop.create_future()
            await self._drained
        if self.closed and self.error is not None:
            raise self.error

    def _fail(self, message: str) -> None:
        if self.error is None:
            self.error = UpstreamError(message)
        self._wake()

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None:
            self._waiter = None
            if not waiter.done():
                waiter.set_result(None)

    async def _wait(self) -> None:
        if self.error is not None:
            raise self.error
        waiter = self._waiter = self.loop.create_future()
        await waiter
        if self.error is not None:
            raise self.error

    async def headers(self) -> None:
        """Wait for the status line and headers."""
        while not self.header_done:
            await self._wait()

    async def body(self) -> bytes:
        """Wait for the whole reply; return its body."""
        while not self.complete:
            await self._wait()
        chunks = self._chunks
        return chunks[0] if len(chunks) == 1 else b"".join(chunks)

    async def chunk(self, multiple: int = 1) -> bytes:
        """The body bytes that have arrived since the last call (waiting for some); b"" at the end.

        With ``multiple``, a piece before the last is a whole number of ``multiple`` bytes:
        the rest waits for the bytes after it (``multiple`` must not exceed the high water).
        """
        while not self.complete and (not self._chunks or self._buffered < multiple):
            await self._wait()
        chunks = self._chunks
        if not chunks:
            return b""
        rest = 0 if self.complete else self._buffered % multiple
        kept: list[bytes] = []
        while rest:  # take the rest off the end, copying at most the part kept
            last = chunks.pop()
            if len(last) <= rest:
                kept.insert(0, last)
                rest -= len(last)
            else:
                kept.insert(0, last[len(last) - rest :])
                chunks.append(memoryview(last)[: len(last) - rest])  # type: ignore[arg-type]
                rest = 0
        data = bytes(chunks[0]) if len(chunks) == 1 else b"".join(chunks)
        self._chunks = kept
        self._buffered = sum(map(len, kept))
        if self._paused and self.transport is not None:
            self._paused = False
            self.transport.resume_reading()
        return data

    @property
    def reusable(self) -> bool:
        return self.complete and self.keep_alive and not self.closed and self.error is None

    def close(self) -> None:
        """Drop the connection now: the upstream sees the client go."""
        if self.transport is not None and not self.closed:
            self.closed = True
            self.transport.abort()


class Upstreams:
    """Keep-alive connection pools, one per endpoint URL, shared by all requests."""

    def __init__(
        self,
        *,
        connect_timeout: float = 5.0,
        idle_timeout: float = 60.0,
        keep_headers: bool = False,
        high_water: int = HIGH_WATER,
    ) -> None:
        self.connect_timeout = connect_timeout
        self.idle_timeout = idle_timeout
        self.keep_headers = keep_headers
        self.high_water = high_water
        self._origins: dict[str, Origin] = {}
        self._idle: dict[str, list[Connection]] = {}
        self._ssl: ssl.SSLContext | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._swept = 0.0

    def origin(self, url: str) -> Origin:
        origin = self._origins.get(url)
        if origin is None:
            origin = self._origins[url] = Origin.parse(url)
        return origin

    async def connect(self, url: str) -> Connection:
        """A connection to ``url``'s host, idle and ready for one request."""
        idle = self._idle.get(url)
        loop = self._loop
        if idle and loop is not None:
            now = loop.time()
            while idle:
                conn = idle.pop()  # the most recently used: the least likely to be stale
                if not conn.closed and now - conn.idle_since < self.idle_timeout:
                    return conn
                conn.close()
        return await self._open(url)

    async def open(self, url: str) -> Connection:
        """A new connection to ``url``'s host, never one from the pool."""
        return await self._open(url)

    async def _open(self, url: str) -> Connection:
        loop = self._loop = self._loop or asyncio.get_running_loop()
        origin = self.origin(url)
        context = None
        if origin.tls:
            context = self._ssl = self._ssl or ssl.create_default_context()
        try:
            async with asyncio.timeout(self.connect_timeout):
                _, conn = await loop.create_connection(
                    lambda: Connection(
                        loop,
                        self._forget,
                        keep_headers=self.keep_headers,
                        high_water=self.high_water,
                    ),
                    origin.host,
                    origin.port,
                    ssl=context,
                    server_hostname=origin.host if context else None,
                )
        except (OSError, TimeoutError, ssl.SSLError) as exc:
            raise UpstreamError(str(exc) or type(exc).__name__) from exc
        return conn

    def release(self, url: str, conn: Connection) -> None:
        """Take back a connection after its reply: kept if it was read to the end."""
        if not conn.reusable:
            conn.close()
            return
        assert self._loop is not None
        conn._begin()
        conn.reused = True
        now = conn.idle_since = self._loop.time()
        idle = self._idle.get(url)
        if idle is None:
            idle = self._idle[url] = []
        idle.append(conn)
        if now - self._swept > self.idle_timeout:
            self._sweep(now)

    def _sweep(self, now: float) -> None:
        self._swept = now
        for url, idle in list(self._idle.items()):
            keep = []
            for conn in idle:
                if not conn.closed and now - conn.idle_since < self.idle_timeout:
                    keep.append(conn)
                else:
                    conn.close()
            if keep:
                self._idle[url] = keep
            else:
                del self._idle[url]
        # Replicas come and go on new ports: forget the addresses no longer in use.
        self._origins = {url: o for url, o in self._origins.items() if url in self._idle}

    def _forget(self, conn: Connection) -> None:
        for idle in self._idle.values():
            if conn in idle:
                idle.remove(conn)
                return

    def close(self) -> None:
        for idle in self._idle.values():
            for conn in idle:
                conn.close()
        self._idle.clear()
