"""`PortListener`: temporary listeners on a node's required ports, for ``--listen``.

Opens every TCP port the role must accept and answers TCP connections by
closing them; on UDP it echoes preflight probes back. It closes all sockets
when leaving its ``with`` block, on a signal, or when its time is up.
"""

from __future__ import annotations

import contextlib
import selectors
import socket
import threading
import time
from dataclasses import dataclass
from types import TracebackType

from llmos.preflight.inbound import PortSpec

__all__ = ["PROBE_PREFIX", "ListenOutcome", "PortListener"]

PROBE_PREFIX = b"llmos-preflight-probe "
_TICK_SECONDS = 0.2


@dataclass(frozen=True)
class ListenOutcome:
    """Whether one port could be opened."""

    protocol: str
    port: int
    error: str | None = None


def _bind(protocol: str, port: int) -> socket.socket:
    """A socket bound on every address, dual-stack when the host has IPv6."""
    kind = socket.SOCK_STREAM if protocol == "tcp" else socket.SOCK_DGRAM
    try:
        sock = socket.socket(socket.AF_INET6, kind)
        sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
        address = "::"
    except OSError:
        sock = socket.socket(socket.AF_INET, kind)
        address = "0.0.0.0"
    try:
        if kind == socket.SOCK_STREAM:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((address, port))
        if kind == socket.SOCK_STREAM:
            sock.listen(64)
        sock.setblocking(False)
    except OSError:
        sock.close()
        raise
    return sock


class PortListener:
    """Listeners on ``specs``; use as a context manager and call `serve`."""

    def __init__(self, specs: list[PortSpec]) -> None:
        self._specs = specs
        self._sockets: list[tuple[str, socket.socket]] = []
        self._selector = selectors.DefaultSelector()
        self.stop_event = threading.Event()
        """Set it (from a signal handler or another thread) to make `serve` return."""

    def open(self) -> list[ListenOutcome]:
        """Bind every port; a port that cannot be bound is reported, not raised."""
        outcomes = []
        for spec in self._specs:
            for port in spec.ports():
                try:
                    sock = _bind(spec.protocol, port)
                except OSError as exc:
                    outcomes.append(ListenOutcome(spec.protocol, port, exc.strerror or str(exc)))
                    continue
                self._sockets.append((spec.protocol, sock))
                self._selector.register(sock, selectors.EVENT_READ, spec.protocol)
                outcomes.append(ListenOutcome(spec.protocol, port))
        return outcomes

    def serve(self, seconds: float) -> None:
        """Answer probes until ``seconds`` pass or `stop_event` is set."""
        deadline = time.monotonic() + seconds
        while not self.stop_event.is_set():
            left = deadline - time.monotonic()
            if left <= 0:
                return
            for key, _ in self._selector.select(timeout=min(left, _TICK_SECONDS)):
                sock = key.fileobj
                if not isinstance(sock, socket.socket):  # pragma: no cover - we register sockets
                    continue
                try:
                    if key.data == "tcp":
                        connection, _ = sock.accept()
                        connection.close()
                    else:
                        payload, peer = sock.recvfrom(2048)
                        if payload.startswith(PROBE_PREFIX):
                            sock.sendto(payload, peer)
                except OSError:
                    continue  # a peer that went away must not stop the listener

    def close(self) -> None:
        """Close every socket; safe to call twice."""
        for _, sock in self._sockets:
            with contextlib.suppress(KeyError, ValueError):
                self._selector.unregister(sock)
            sock.close()
        self._sockets.clear()
        self._selector.close()

    def __enter__(self) -> PortListener:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()
