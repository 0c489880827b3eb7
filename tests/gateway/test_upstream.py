"""Edge cases of the gateway's own HTTP/1.1 client to replicas (llmos.gateway.upstream), against
raw asyncio servers on loopback: lengths, chunking, reuse, 100 Continue, broken or stale
connections, slow readers, abandoned replies."""

from __future__ import annotations

import asyncio

import pytest

from llmos.gateway.upstream import UpstreamError, Upstreams


async def serve(handler):
    async def on_conn(reader, writer):
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = int(
                    next(
                        line
                        for line in head.split(b"\r\n")
                        if line.lower().startswith(b"content-length")
                    ).split(b":")[1]
                )
                body = await reader.readexactly(length)
                again = await handler(head, body, writer)
                if not again:
                    break
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(on_conn, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    return server, f"http://127.0.0.1:{port}"


async def roundtrip(up, url, body=b"{}", stream=False):
    conn = await up.connect(url)
    conn.send(up.origin(url).head("/v1/chat/completions"), body)
    if stream:
        await conn.headers()
        out = []
        while c := await conn.chunk():
            out.append(c)
        data = b"".join(out)
    else:
        data = await conn.body()
    status, ct = conn.status, conn.content_type
    up.release(url, conn)
    return status, ct, data, conn


def run(coro):
    return asyncio.run(coro)


def test_content_length_and_reuse():
    async def main():
        seen = []

        async def h(head, body, w):
            seen.append((head, body))
            w.write(
                b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\nok"
            )
            await w.drain()
            return True

        server, url = await serve(h)
        up = Upstreams()
        s1 = await roundtrip(up, url, b'{"a":1}')
        s2 = await roundtrip(up, url, b'{"b":2}')
        assert s1[:3] == (200, b"application/json", b"ok") and s2[:3] == s1[:3]
        assert s1[3] is s2[3], "keep-alive connection reused"
        assert seen[0][0].startswith(b"POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1:")
        assert seen[0][1] == b'{"a":1}'
        up.close()
        server.close()

    run(main())


def test_chunked_stream_and_prefix():
    async def main():
        async def h(head, body, w):
            assert head.startswith(b"POST /pre/v1/chat/completions ")
            w.write(
                b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n"
            )
            for i in range(3):
                data = b"data: %d\n\n" % i
                w.write(b"%x\r\n%s\r\n" % (len(data), data))
                await w.drain()
                await asyncio.sleep(0.01)
            w.write(b"0\r\n\r\n")
            return True

        server, url = await serve(h)
        up = Upstreams()
        status, ct, data, _conn = await roundtrip(up, url + "/pre/", stream=True)
        assert (status, ct, data) == (
            200,
            b"text/event-stream",
            b"data: 0\n\ndata: 1\n\ndata: 2\n\n",
        )
        up.close()
        server.close()

    run(main())


def test_body_until_close_and_interim_100():
    async def main():
        async def h(head, body, w):
            w.write(
                b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Type: application/json\r\n\r\nhello"
            )
            await w.drain()
            return False  # close: the body ends with the connection

        server, url = await serve(h)
        up = Upstreams()
        status, _ct, data, conn = await roundtrip(up, url)
        assert (status, data) == (200, b"hello")
        assert not conn.reusable
        up.close()
        server.close()

    run(main())


def test_broken_reply_and_refused():
    async def main():
        async def h(head, body, w):
            w.write(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\npartial")
            await w.drain()
            return False

        server, url = await serve(h)
        up = Upstreams()
        with pytest.raises(UpstreamError, match="closed the connection"):
            await roundtrip(up, url)

        async def bad(head, body, w):
            w.write(b"NOT HTTP AT ALL\r\n\r\n")
            await w.drain()
            return True

        server2, url2 = await serve(bad)
        with pytest.raises(UpstreamError, match="malformed"):
            await roundtrip(up, url2)
        server.close()
        server2.close()
        server3, url3 = await serve(bad)
        server3.close()
        await server3.wait_closed()
        with pytest.raises(UpstreamError):
            await roundtrip(up, url3)
        up.close()

    run(main())


def test_stale_idle_connection_is_not_used():
    async def main():
        count = 0

        async def h(head, body, w):
            nonlocal count
            count += 1
            w.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
            await w.drain()
            return False  # server closes after each reply (without saying Connection: close)

        server, url = await serve(h)
        up = Upstreams()
        a = await roundtrip(up, url)
        await asyncio.sleep(0.05)  # the close arrives while idle
        b = await roundtrip(up, url)
        assert a[2] == b[2] == b"ok" and a[3] is not b[3]
        up.close()
        server.close()

    run(main())


def test_slow_consumer_pauses_reading():
    async def main():
        big = b"x" * (1024 * 1024)

        async def h(head, body, w):
            w.write(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % (4 * len(big)))
            for _ in range(4):
                w.write(big)
                await w.drain()
            return True

        server, url = await serve(h)
        up = Upstreams()
        conn = await up.connect(url)
        conn.send(up.origin(url).head("/x"), b"{}")
        await conn.headers()
        total = 0
        paused_seen = False
        while c := await conn.chunk():
            total += len(c)
            await asyncio.sleep(0.01)
            paused_seen = paused_seen or conn._paused
        assert total == 4 * len(big)
        up.release(url, conn)
        assert conn in up._idle[url] and paused_seen
        up.close()
        server.close()

    run(main())


def test_abandoned_reply_closes_connection():
    async def main():
        closed = asyncio.Event()

        async def h(head, body, w):
            w.write(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n")
            await w.drain()
            try:
                while True:
                    await asyncio.sleep(0.01)
                    w.write(b"1\r\n.\r\n")
                    await w.drain()
            except ConnectionError:
                closed.set()
            return False

        server, url = await serve(h)
        up = Upstreams()
        conn = await up.connect(url)
        conn.send(up.origin(url).head("/x"), b"{}")
        await conn.headers()
        assert (await conn.chunk()).startswith(b"hello")
        up.release(url, conn)  # not read to the end: closed
        await asyncio.wait_for(closed.wait(), 2)
        up.close()
        server.close()

    run(main())


def test_a_head_with_authorization_carries_it_and_is_kept_apart() -> None:
    origin = Upstreams().origin("http://127.0.0.1:9/")
    plain = origin.head("/v1/models")
    keyed = origin.head("/v1/models", b"Bearer k1")
    assert b"Authorization" not in plain
    assert b"\r\nAuthorization: Bearer k1\r\n" in keyed
    assert keyed.endswith(b"Content-Length: ") and plain.endswith(b"Content-Length: ")
    assert origin.head("/v1/models", b"Bearer k2") != keyed
