"""What the workload proxy forwards: the browser's cookies without LLMOS's own, and the
workload's secret cookies in place of any the browser sent under the same names; and how it
relays HTTP to a workload (a raw asyncio server here): streamed replies with their headers,
chunked uploads, HEAD, a kept-alive connection the workload closed, a workload that is down."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx

from llmos.api.workload_proxy import Upstream, WorkloadProxy
from llmos.auth.credentials import SESSION_COOKIE

UPSTREAM = "http://127.0.0.1:1"


def forwarded_cookies(cookie: str | None, upstream: Upstream) -> list[str]:
    proxy = WorkloadProxy(auth=None, routes={})  # type: ignore[arg-type]  # _headers needs neither
    headers = [(b"host", b"llmos.example:8443")]
    if cookie is not None:
        headers.append((b"cookie", cookie.encode()))
    scope: dict[str, Any] = {"headers": headers, "client": ("10.0.0.9", 5000)}
    return [v.decode() for name, v in proxy._headers(scope, upstream) if name.lower() == b"cookie"]


def test_the_llmos_session_cookie_stays_behind() -> None:
    cookie = f"{SESSION_COOKIE}=user-token; _xsrf=abc"
    assert forwarded_cookies(cookie, Upstream(UPSTREAM, "/")) == ["_xsrf=abc"]
    assert forwarded_cookies(f"{SESSION_COOKIE}=user-token", Upstream(UPSTREAM, "/")) == []


def test_the_workloads_cookie_replaces_the_browsers() -> None:
    upstream = Upstream(UPSTREAM, "/", cookies={"code-server-session": "secret"})
    cookie = f"{SESSION_COOKIE}=user-token; code-server-session=forged; theme=dark"
    assert forwarded_cookies(cookie, upstream) == ["theme=dark; code-server-session=secret"]
    assert forwarded_cookies(None, upstream) == ["code-server-session=secret"]


def test_a_workload_path_without_its_slash_is_redirected(admin: httpx.Client) -> None:
    response = admin.get("/notebooks/default/anything?x=1", follow_redirects=False)
    assert response.status_code == 308
    assert response.headers["location"] == "/notebooks/default/anything/?x=1"


async def _read_request(reader: asyncio.StreamReader) -> tuple[bytes, bytes]:
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.lower().split(b"\r\n")
    length = next((int(x.split(b":")[1]) for x in lines if x.startswith(b"content-length")), 0)
    if b"transfer-encoding: chunked" not in lines:
        return head, await reader.readexactly(length)
    body = b""
    while size := int((await reader.readuntil(b"\r\n")).strip(), 16):
        body += (await reader.readexactly(size + 2))[:-2]
    await reader.readuntil(b"\r\n")
    return head, body


async def _workload(reply: Any, requests: list[tuple[bytes, bytes]]) -> tuple[asyncio.Server, str]:
    """A raw HTTP/1.1 server: ``reply(head, body, writer)`` answers; False closes the connection."""

    async def on_connection(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                requests.append(await _read_request(reader))
                if not await reply(*requests[-1], writer):
                    break
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(on_connection, "127.0.0.1", 0)
    return server, f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}"


async def _relay(
    proxy: WorkloadProxy,
    upstream: Upstream,
    method: str = "GET",
    body: list[bytes] | None = None,
    headers: list[tuple[bytes, bytes]] | None = None,
    query: bytes = b"",
) -> tuple[dict[str, Any], bytes]:
    """One request through the proxy's relay; the response start and the whole body."""
    pieces = list(body or [b""])
    sent: list[dict[str, Any]] = []
    scope = {
        "type": "http",
        "method": method,
        "query_string": query,
        "client": ("10.0.0.9", 5000),
        "headers": [
            (b"host", b"llmos.example:8443"),
            (b"authorization", b"Bearer user"),
            *(headers or []),
        ],
    }

    async def receive() -> dict[str, Any]:
        if pieces:
            return {"type": "http.request", "body": pieces.pop(0), "more_body": bool(pieces)}
        await asyncio.Event().wait()  # the client stays
        raise AssertionError

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    await asyncio.wait_for(proxy._http(scope, receive, send, upstream), 10)
    assert not sent[-1].get("more_body"), "the reply was ended"
    return sent[0], b"".join(m.get("body", b"") for m in sent[1:])


def test_a_large_reply_streams_through_with_its_headers() -> None:
    big = bytes(range(256)) * 12288  # 3 MiB

    async def reply(head: bytes, body: bytes, w: asyncio.StreamWriter) -> bool:
        w.write(
            b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\nSet-Cookie: a=1\r\nSet-Cookie: b=2\r\n"
            b"Connection: keep-alive\r\n\r\n" % len(big)
        )
        for at in range(0, len(big), 1 << 20):
            w.write(big[at : at + (1 << 20)])
            await w.drain()
        return True

    async def main() -> None:
        requests: list[tuple[bytes, bytes]] = []
        server, base = await _workload(reply, requests)
        proxy = WorkloadProxy(auth=None, routes={})  # type: ignore[arg-type]
        upstream = Upstream(base, "/nb/files/a b.txt", headers=[("X-Secret", "s3")])
        start, body = await _relay(proxy, upstream, query=b"x=1")
        again, _ = await _relay(proxy, upstream)
        await proxy.close()
        server.close()
        assert start["status"] == 200 and body == big and again["status"] == 200
        names = [name for name, _ in start["headers"]]
        assert (b"set-cookie", b"a=1") in start["headers"]
        assert (b"set-cookie", b"b=2") in start["headers"]
        assert b"connection" not in names
        head = requests[0][0]
        assert head.startswith(b"GET /nb/files/a%20b.txt?x=1 HTTP/1.1\r\n")
        assert b"\r\nhost: 127.0.0.1:" in head and b"\r\nx-secret: s3\r\n" in head.lower()
        assert b"authorization" not in head.lower()
        assert b"\r\nx-forwarded-host: llmos.example:8443\r\n" in head

    asyncio.run(main())


def test_a_sized_reply_goes_on_in_whole_tls_records_and_a_stream_as_it_comes() -> None:
    """A download is sent on in multiples of 16 KiB (the last piece excepted), however the
    workload's bytes arrive; a chunked stream's piece goes on at once, not held for more."""
    pieces = [b"a" * 5000, b"b" * 70000, b"c" * 3, b"d" * 40000, b"e" * 16384]
    forwarded = asyncio.Event()

    async def reply(head: bytes, body: bytes, w: asyncio.StreamWriter) -> bool:
        if head.startswith(b"GET /stream "):
            w.write(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n")
            await asyncio.wait_for(forwarded.wait(), 5)  # the proxy sent "hello" on already
            w.write(b"0\r\n\r\n")
            return True
        w.write(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % sum(map(len, pieces)))
        for piece in pieces:
            w.write(piece)
            await w.drain()
            await asyncio.sleep(0.01)  # each piece its own read at the proxy
        return True

    async def main() -> None:
        server, base = await _workload(reply, [])
        proxy = WorkloadProxy(auth=None, routes={})  # type: ignore[arg-type]
        sent: list[dict[str, Any]] = []

        async def receive() -> dict[str, Any]:
            await asyncio.Event().wait()
            raise AssertionError

        async def send(message: dict[str, Any]) -> None:
            sent.append(message)
            if message.get("body") == b"hello":
                forwarded.set()

        scope = {"type": "http", "method": "GET", "query_string": b"", "headers": []}
        await asyncio.wait_for(proxy._http(scope, receive, send, Upstream(base, "/file")), 10)
        bodies = [m["body"] for m in sent[1:]]
        assert b"".join(bodies) == b"".join(pieces) and not sent[-1]["more_body"]
        assert all(len(body) % 16384 == 0 for body in bodies[:-1]), [len(b) for b in bodies]
        assert len(bodies) > 2, "pieces went on as they came, not all at the end"
        sent.clear()
        await asyncio.wait_for(proxy._http(scope, receive, send, Upstream(base, "/stream")), 10)
        assert b"".join(m["body"] for m in sent[1:]) == b"hello"
        await proxy.close()
        server.close()

    asyncio.run(main())


def test_a_chunked_upload_goes_on_chunked_and_head_gets_no_body() -> None:
    async def reply(head: bytes, body: bytes, w: asyncio.StreamWriter) -> bool:
        if head.startswith(b"HEAD "):
            w.write(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n")
        else:
            w.write(b"HTTP/1.1 201 Created\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body))
        return True

    async def main() -> None:
        requests: list[tuple[bytes, bytes]] = []
        server, base = await _workload(reply, requests)
        proxy = WorkloadProxy(auth=None, routes={})  # type: ignore[arg-type]
        chunked = [(b"transfer-encoding", b"chunked")]
        start, body = await _relay(
            proxy, Upstream(base, "/up"), "PUT", [b"one,", b"two,", b"three"], chunked
        )
        assert (start["status"], body) == (201, b"one,two,three")
        assert b"\r\ntransfer-encoding: chunked\r\n" in requests[0][0]
        sized = [(b"content-length", b"5")]
        start, body = await _relay(proxy, Upstream(base, "/up"), "POST", [b"ab", b"cde"], sized)
        assert (start["status"], body) == (201, b"abcde")
        assert b"transfer-encoding" not in requests[1][0]
        start, body = await _relay(proxy, Upstream(base, "/h"), "HEAD")
        assert (start["status"], body) == (200, b"")
        assert (b"content-length", b"10") in start["headers"]
        await proxy.close()
        server.close()

    asyncio.run(main())


def test_a_kept_alive_connection_the_workload_dropped_is_tried_once_more() -> None:
    async def reply(head: bytes, body: bytes, w: asyncio.StreamWriter) -> bool:
        if getattr(w, "answered", False):
            return False  # the second request on a connection: dropped unanswered
        w.answered = True  # type: ignore[attr-defined]
        w.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
        return True

    async def main() -> None:
        requests: list[tuple[bytes, bytes]] = []
        server, base = await _workload(reply, requests)
        proxy = WorkloadProxy(auth=None, routes={})  # type: ignore[arg-type]
        first = await _relay(proxy, Upstream(base, "/"))
        second = await _relay(proxy, Upstream(base, "/"))
        assert first[1] == second[1] == b"ok" and len(requests) == 3
        await proxy.close()
        server.close()

    asyncio.run(main())


def test_a_workload_that_is_down_is_503() -> None:
    async def main() -> None:
        server = await asyncio.start_server(lambda r, w: None, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        server.close()
        await server.wait_closed()
        proxy = WorkloadProxy(auth=None, routes={})  # type: ignore[arg-type]
        start, body = await _relay(proxy, Upstream(f"http://127.0.0.1:{port}", "/"))
        await proxy.close()
        assert start["status"] == 503 and b"the workload did not answer" in body

    asyncio.run(main())


def test_a_websocket_upgrade_the_workload_never_answers_is_closed() -> None:
    """A workload that takes the connection and never answers the upgrade (Jupyter waiting for
    a kernel that is not coming) gets the client a close, not a connection held forever."""
    held: list[asyncio.StreamWriter] = []

    async def main() -> None:
        server = await asyncio.start_server(lambda r, w: held.append(w), "127.0.0.1", 0)
        base = f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}"
        proxy = WorkloadProxy(auth=None, routes={}, ws_handshake_seconds=0.3)  # type: ignore[arg-type]
        sent: list[dict[str, Any]] = []
        messages = [{"type": "websocket.connect"}]

        async def receive() -> dict[str, Any]:
            return messages.pop(0) if messages else {"type": "websocket.disconnect"}

        async def send(message: dict[str, Any]) -> None:
            sent.append(message)

        scope = {"type": "websocket", "headers": [(b"host", b"llmos.example:8443")]}
        await asyncio.wait_for(proxy._websocket(scope, receive, send, Upstream(base, "/ws")), 10)
        await proxy.close()
        server.close()
        assert held, "the proxy reached the workload"
        assert sent == [{"type": "websocket.close", "code": 1011}]

    asyncio.run(main())
