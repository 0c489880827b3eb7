"""Free TCP ports on 127.0.0.1 for replicas, and ``{port}`` substitution.

Used by the supervisor: before each start of a replica that wants a port it
asks the :class:`PortPool` for one (its previous port if that is still free, so
a restart usually keeps its address), then renders the command and env with
:func:`substitute`. Ports are found by binding port 0 on 127.0.0.1 and never on
another address. A port is only known to be free at the instant we close our
probe socket; the supervisor retries on a fresh port if the process then dies
reporting the address in use (see ``looks_like_port_clash``).
"""

from __future__ import annotations

import errno
import socket

__all__ = ["LOOPBACK", "PortPool", "looks_like_port_clash", "substitute"]

LOOPBACK = "127.0.0.1"
PLACEHOLDER = "{port}"
_CLASH_MARKERS = ("address already in use", "eaddrinuse", "errno 98")


def substitute(text: str, port: int | None) -> str:
    """``text`` with every literal ``{port}`` replaced (unchanged without a port)."""
    return text if port is None else text.replace(PLACEHOLDER, str(port))


def looks_like_port_clash(lines: tuple[str, ...]) -> bool:
    """Whether a process's last lines say it could not bind its port."""
    return any(marker in line.lower() for line in lines for marker in _CLASH_MARKERS)


def _bindable(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        # Servers set SO_REUSEADDR, so a port with only TIME_WAIT sockets is free for them too.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((LOOPBACK, port))
        except OSError as exc:
            if exc.errno in (errno.EADDRINUSE, errno.EACCES):
                return False
            raise
        return True


def _any_free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((LOOPBACK, 0))
        port: int = sock.getsockname()[1]
        return port


class PortPool:
    """The ports this runtime's replicas hold, so two replicas never get the same one."""

    def __init__(self) -> None:
        self._held: set[int] = set()

    def allocate(self, previous: int | None = None, *, reuse: bool = True) -> int:
        """A free port for a caller that held ``previous``.

        That is ``previous`` itself if ``reuse`` and it is still bindable;
        otherwise a new port, never ``previous``, which is then released.
        """
        if previous is not None and reuse and _bindable(previous):
            return previous
        for _ in range(100):
            port = _any_free_port()
            if port not in self._held:  # ``previous`` is still held here, so it is skipped
                self._held.add(port)
                self.release(previous)
                return port
        raise OSError(errno.EADDRNOTAVAIL, "no free port on 127.0.0.1")

    def release(self, port: int | None) -> None:
        """Give ``port`` back (no-op for None or a port not held)."""
        if port is not None:
            self._held.discard(port)
