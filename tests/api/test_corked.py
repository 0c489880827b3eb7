"""The corked transport under uvicorn: a reply's headers and body in one TLS record.

Unit tests count the writes that reach a recording transport; the rest run a
real uvicorn (uvloop, TLS) with :class:`CorkedHttpToolsProtocol` and read the
records with :class:`tlsrecords.RecordClient`.
"""

from __future__ import annotations

import asyncio
import functools
import ssl
import threading
import time
from collections.abc import Callable, Coroutine, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import uvicorn
from websockets.sync.client import connect

from llmos._lib.tls import ensure_certificates
from llmos.api.corked import CORK_LIMIT, CorkedHttpToolsProtocol, CorkedTransport
from server import free_port
from tlsrecords import RecordClient


class Recording(asyncio.Transport):
    """A transport that records what reaches it."""

    def __init__(self) -> None:
        super().__init__({"peername": ("127.0.0.1", 1234)})
        self.writes: list[bytes] = []
        self.events: list[str] = []
        self.closing = False
        self.buffered = 7
        self.protocol: asyncio.BaseProtocol | None = None

    def write(self, data: Any) -> None:
        self.writes.append(bytes(data))
        self.events.append(f"write {len(data)}")

    def close(self) -> None:
        self.closing = True
        self.events.append("close")

    def abort(self) -> None:
        self.closing = True
        self.events.append("abort")

    def write_eof(self) -> None:
        self.events.append("eof")

    def is_closing(self) -> bool:
        return self.closing

    def get_write_buffer_size(self) -> int:
        return self.buffered

    def pause_reading(self) -> None:
        self.events.append("pause_reading")

    def set_protocol(self, protocol: asyncio.BaseProtocol) -> None:
        self.protocol = protocol


def corked() -> tuple[CorkedTransport, Recording, asyncio.AbstractEventLoop]:
    loop = asyncio.get_running_loop()
    real = Recording()
    return CorkedTransport(real, loop), real, loop


def in_loop(test: Callable[[], Coroutine[Any, Any, None]]) -> Callable[[], None]:
    @functools.wraps(test)
    def run() -> None:
        asyncio.run(test())

    return run


async def turn() -> None:
    await asyncio.sleep(0)
    await asyncio.sleep(0)


@in_loop
async def test_writes_of_one_turn_go_out_as_one() -> None:
    cork, real, _ = corked()
    cork.write(b"HTTP/1.1 200 OK\r\n\r\n")
    cork.write(bytearray(b"{}"))
    cork.writelines([b"a", memoryview(b"b")])
    assert real.writes == []
    assert cork.get_write_buffer_size() == 7 + 19 + 2 + 2
    await turn()
    assert real.writes == [b"HTTP/1.1 200 OK\r\n\r\n{}ab"]
    assert cork.get_write_buffer_size() == 7
    cork.write(b"next")
    await turn()
    assert real.writes[1:] == [b"next"]


@in_loop
async def test_a_reused_buffer_is_copied() -> None:
    cork, real, _ = corked()
    buffer = bytearray(b"one")
    cork.write(buffer)
    buffer[:] = b"two"
    await turn()
    assert real.writes == [b"one"]


@in_loop
async def test_large_writes_go_through_in_order() -> None:
    cork, real, _ = corked()
    big = b"x" * CORK_LIMIT
    cork.write(b"head")
    cork.write(big)
    assert real.writes == [b"head", big]  # at once: the real transport's flow control sees it
    small = b"y" * 1024
    for _ in range(CORK_LIMIT // len(small) + 1):
        cork.write(small)
    assert real.writes[2:] == [small * (CORK_LIMIT // len(small))]  # never more than the limit held
    await turn()
    assert real.writes[3:] == [small]


@in_loop
async def test_close_and_eof_send_what_is_held_first() -> None:
    cork, real, _ = corked()
    cork.write(b"bye")
    cork.write_eof()
    cork.write(b"last")
    cork.close()
    assert real.events == ["write 3", "eof", "write 4", "close"]
    await turn()
    assert real.events == ["write 3", "eof", "write 4", "close"]


@in_loop
async def test_abort_and_a_lost_connection_drop_what_is_held() -> None:
    cork, real, _ = corked()
    cork.write(b"dropped")
    cork.abort()
    await turn()
    assert real.events == ["abort"]
    cork, real, _ = corked()
    cork.write(b"too late")
    real.closing = True  # the peer went away before the turn ended
    await turn()
    assert real.writes == []
    assert cork.is_closing()


@in_loop
async def test_the_rest_is_the_real_transports() -> None:
    cork, real, _ = corked()
    assert cork.get_extra_info("peername") == ("127.0.0.1", 1234)
    assert cork.get_extra_info("sslcontext", "none") == "none"
    cork.pause_reading()
    protocol = asyncio.Protocol()
    cork.set_protocol(protocol)
    assert real.events == ["pause_reading"]
    assert real.protocol is protocol
    assert cork.wrapped is real


# A real uvicorn over TLS.


async def json_app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] == "websocket":
        await receive()  # websocket.connect
        await send({"type": "websocket.accept"})
        while (message := await receive())["type"] == "websocket.receive":
            await send({"type": "websocket.send", "text": "echo " + message["text"]})
        return
    path = scope["path"]
    if path == "/json":
        body = b'{"choices": []}'
        headers = [(b"content-type", b"application/json"), (b"content-length", b"15")]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": body})
    elif path == "/slow-stream":
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"first", "more_body": True})
        await asyncio.sleep(0.3)
        await send({"type": "http.response.body", "body": b"second"})
    elif path == "/flood":
        # 1 KiB pieces, never yielding unless uvicorn's flow control pauses the send.
        piece = b"z" * 1024
        headers = [(b"content-length", b"%d" % (FLOOD * len(piece)))]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        for _ in range(FLOOD - 1):
            await send({"type": "http.response.body", "body": piece, "more_body": True})
            SENT[0] += 1
        await send({"type": "http.response.body", "body": piece})


FLOOD = 32 * 1024  # 32 MiB in 1 KiB pieces
SENT = [0]


@contextmanager
def tls_server(tmp_path: Path, http: Any) -> Iterator[tuple[int, str]]:
    tls = ensure_certificates(tmp_path / "tls", [])
    port = free_port()
    config = uvicorn.Config(
        json_app,
        host="127.0.0.1",
        port=port,
        ssl_certfile=str(tls.cert),
        ssl_keyfile=str(tls.key),
        log_config=None,
        access_log=False,
        lifespan="off",
        loop="uvloop",
        http=http,
        ws="websockets-sansio",
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert time.monotonic() < deadline and thread.is_alive(), "uvicorn did not start"
        time.sleep(0.01)
    try:
        yield port, str(tls.ca_cert)
    finally:
        server.should_exit = True
        thread.join(10)


GET = b"GET %s HTTP/1.1\r\nhost: x\r\n\r\n"


@pytest.mark.parametrize(("http", "records"), [("httptools", 2), (CorkedHttpToolsProtocol, 1)])
def test_a_json_reply_is_one_tls_record(tmp_path: Path, http: Any, records: int) -> None:
    with tls_server(tmp_path, http) as (port, ca):
        client = RecordClient(port, ca)
        for _ in range(3):  # on a kept-alive connection, every time
            client.send(GET % b"/json")
            reply = client.receive()
            assert reply.plaintext.endswith(b'{"choices": []}')
            assert len(reply.records) == records, reply.records
        client.close()


def test_a_stream_is_not_held_past_a_turn(tmp_path: Path) -> None:
    with tls_server(tmp_path, CorkedHttpToolsProtocol) as (port, ca):
        client = RecordClient(port, ca)
        started = time.monotonic()
        client.send(GET % b"/slow-stream")
        reply = client.receive()
        first = next(at for at, text in reply.arrivals if b"first" in text)
        second = next(at for at, text in reply.arrivals if b"second" in text)
        assert first - started < 0.2 < second - started
        assert len(reply.records) == 2  # headers with "first", then "second" and the end
        client.close()


def test_flow_control_still_pauses_a_fast_sender(tmp_path: Path) -> None:
    SENT[0] = 0
    with tls_server(tmp_path, CorkedHttpToolsProtocol) as (port, ca):
        client = RecordClient(port, ca)
        client.send(GET % b"/flood")
        time.sleep(1.0)  # the client reads nothing: the sender must stall
        stalled = SENT[0]
        time.sleep(0.3)
        assert SENT[0] == stalled, "the sender went on while the client read nothing"
        assert stalled < FLOOD // 2, f"{stalled} KiB sent to a client that reads nothing"
        reply = client.receive()
        assert reply.plaintext.endswith(b"z" * 1024)
        assert len(reply.plaintext.partition(b"\r\n\r\n")[2]) == FLOOD * 1024
        assert max(reply.records) <= 16 * 1024 + 256
        client.close()


def test_websockets_work_through_the_corked_transport(tmp_path: Path) -> None:
    with tls_server(tmp_path, CorkedHttpToolsProtocol) as (port, ca):
        context = ssl.create_default_context(cafile=ca)
        with connect(f"wss://127.0.0.1:{port}/ws", ssl=context) as ws:
            for text in ("one", "two"):
                ws.send(text)
                assert ws.recv(timeout=5) == f"echo {text}"
