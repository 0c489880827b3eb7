"""uvicorn's httptools protocol, with the writes of one event-loop turn sent as one.

uvicorn writes a reply's status line and headers, and then its body, as two
``transport.write`` calls. Over TLS each write is a TLS record of its own and,
with uvloop, a ``write()`` system call of its own, so a small JSON reply took
two records and two sends, and the client could wake for each.

:class:`CorkedTransport` holds small writes and sends what it holds once the
event loop turns (``call_soon``), or at once when the held bytes reach
:data:`CORK_LIMIT`, before a larger write, and before ``close``/``write_eof``.
Writes that are held are counted in ``get_write_buffer_size``. Larger writes
go through in order, so the real transport's flow control (``pause_writing``
to the protocol above a high-water mark) works as before: at most
:data:`CORK_LIMIT` bytes are held back from it, and never past the turn.
"""

from __future__ import annotations

import asyncio
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

# One TLS record carries at most 16 KiB: holding more would merge no records.
CORK_LIMIT = 16 * 1024


class CorkedTransport(asyncio.Transport):
    """Wraps a transport; writes made in one turn of the loop go out as one write."""

    __slots__ = ("_held", "_held_size", "_loop", "_scheduled", "_transport")

    def __init__(self, transport: asyncio.Transport, loop: asyncio.AbstractEventLoop) -> None:
        super().__init__()
        self._transport = transport
        self._loop = loop
        self._held: list[bytes] = []
        self._held_size = 0
        self._scheduled = False

    @property
    def wrapped(self) -> asyncio.Transport:
        return self._transport

    def write(self, data: bytes | bytearray | memoryview) -> None:
        size = len(data)
        if not size:
            return
        if self._held_size + size > CORK_LIMIT:
            self.flush()
            if size >= CORK_LIMIT:
                self._transport.write(data)
                return
        # The caller may reuse a mutable buffer once write() returns.
        self._held.append(data if isinstance(data, bytes) else bytes(data))
        self._held_size += size
        if not self._scheduled:
            self._scheduled = True
            self._loop.call_soon(self._turn)

    def writelines(self, list_of_data: Any) -> None:
        for data in list_of_data:
            self.write(data)

    def _turn(self) -> None:
        self._scheduled = False
        self.flush()

    def flush(self) -> None:
        """Send what is held now, as one write (dropped if the connection is gone)."""
        if not self._held:
            return
        held = self._held
        data = held[0] if len(held) == 1 else b"".join(held)
        self._held = []
        self._held_size = 0
        if not self._transport.is_closing():
            self._transport.write(data)

    def write_eof(self) -> None:
        self.flush()
        self._transport.write_eof()

    def can_write_eof(self) -> bool:
        return self._transport.can_write_eof()

    def close(self) -> None:
        self.flush()
        self._transport.close()

    def abort(self) -> None:
        self._held = []
        self._held_size = 0
        self._transport.abort()

    def is_closing(self) -> bool:
        return self._transport.is_closing()

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return self._transport.get_extra_info(name, default)

    def set_protocol(self, protocol: asyncio.BaseProtocol) -> None:
        self._transport.set_protocol(protocol)

    def get_protocol(self) -> asyncio.BaseProtocol:
        return self._transport.get_protocol()

    def is_reading(self) -> bool:
        return self._transport.is_reading()

    def pause_reading(self) -> None:
        self._transport.pause_reading()

    def resume_reading(self) -> None:
        self._transport.resume_reading()

    def get_write_buffer_size(self) -> int:
        return self._transport.get_write_buffer_size() + self._held_size

    def get_write_buffer_limits(self) -> tuple[int, int]:
        return self._transport.get_write_buffer_limits()

    def set_write_buffer_limits(self, high: int | None = None, low: int | None = None) -> None:
        self._transport.set_write_buffer_limits(high, low)


class CorkedHttpToolsProtocol(HttpToolsProtocol):
    """``uvicorn.Config(http=CorkedHttpToolsProtocol)``: httptools over a :class:`CorkedTransport`.

    A WebSocket upgrade hands the same wrapped transport to the WebSocket
    protocol, so its frames are corked the same way.
    """

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(CorkedTransport(transport, self.loop))
