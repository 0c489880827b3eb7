"""A blocking TLS client that sees the records: how many a server sends per reply, and when.

TLS runs over an ``ssl.MemoryBIO`` on a plain socket, so every byte the
server writes passes through here before it is decrypted: each reply comes
back with the sizes of the TLS records it took and of each ``recv()``.
"""

from __future__ import annotations

import socket
import ssl
import time
from collections.abc import Callable
from dataclasses import dataclass, field


@dataclass
class Reply:
    plaintext: bytes = b""
    records: list[int] = field(default_factory=list)  # payload length of each TLS record
    arrivals: list[tuple[float, bytes]] = field(default_factory=list)  # (time, its first 256 B)


def http_reply_done(plaintext: bytes) -> bool:
    """A whole HTTP/1.1 reply with Content-Length, or a chunked one with its last chunk."""
    head, sep, body = plaintext.partition(b"\r\n\r\n")
    if not sep:
        return False
    for line in head.lower().split(b"\r\n"):
        if line.startswith(b"content-length:"):
            return len(body) >= int(line.split(b":", 1)[1])
    return body.endswith(b"0\r\n\r\n")


def _reply_length(plaintext: bytes) -> int | None:
    head, sep, _ = plaintext.partition(b"\r\n\r\n")
    if not sep:
        return None
    for line in head.lower().split(b"\r\n"):
        if line.startswith(b"content-length:"):
            return len(head) + 4 + int(line.split(b":", 1)[1])
    return None


class RecordClient:
    def __init__(self, port: int, cafile: str, host: str = "127.0.0.1") -> None:
        context = ssl.create_default_context(cafile=cafile)
        self._in, self._out = ssl.MemoryBIO(), ssl.MemoryBIO()
        self._tls = context.wrap_bio(self._in, self._out, server_hostname=host)
        self.sock = socket.create_connection((host, port), timeout=10)
        self._raw = b""  # bytes of a record not complete yet
        while True:
            try:
                self._tls.do_handshake()
                break
            except ssl.SSLWantReadError:
                self._flush()
                self._in.write(self.sock.recv(65536))
        self._flush()
        # TLS 1.3 session tickets come after the handshake: read them before counting.
        time.sleep(0.1)
        self.sock.settimeout(0.2)
        try:
            while data := self.sock.recv(65536):
                self._in.write(data)
                self._decrypt()
        except TimeoutError:
            pass
        self.sock.settimeout(10)

    def _flush(self) -> None:
        if data := self._out.read():
            self.sock.sendall(data)

    def _decrypt(self) -> bytes:
        plaintext = b""
        try:
            while True:
                plaintext += self._tls.read(65536)
        except ssl.SSLWantReadError:
            return plaintext

    def send(self, data: bytes) -> None:
        self._tls.write(data)
        self._flush()

    def receive(self, done: Callable[[bytes], bool] = http_reply_done) -> Reply:
        """Read until ``done(plaintext)``; with the default, until a whole HTTP reply is in."""
        reply = Reply()
        pieces: list[bytes] = []
        have = 0
        length: int | None = None  # the whole reply's, once its head says (Content-Length)
        while True:
            if length is None:
                plaintext = b"".join(pieces)
                pieces = [plaintext]
                if done(plaintext):
                    break
                if done is http_reply_done:
                    length = _reply_length(plaintext)
            elif have >= length:
                break
            data = self.sock.recv(1 << 20)
            if not data:
                raise ConnectionError(f"closed after {b''.join(pieces)[:200]!r}")
            self._raw += data
            while len(self._raw) >= 5 and len(self._raw) >= 5 + (
                size := int.from_bytes(self._raw[3:5], "big")
            ):
                reply.records.append(size)
                self._raw = self._raw[5 + size :]
            self._in.write(data)
            plaintext = self._decrypt()
            reply.arrivals.append((time.monotonic(), plaintext[:256]))
            pieces.append(plaintext)
            have += len(plaintext)
        reply.plaintext = b"".join(pieces)
        return reply

    def close(self) -> None:
        self.sock.close()
