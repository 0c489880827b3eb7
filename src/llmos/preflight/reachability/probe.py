"""Probe peers' required ports, for ``llmos preflight --peer``.

TCP ports pass when a connection opens. UDP 8472 passes when the peer's
``llmos preflight --listen`` echoes a probe back. Every probe is bounded by
a timeout and they run in parallel, so a matrix of peers by ports takes
about one timeout.
"""

from __future__ import annotations

import secrets
import socket
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from llmos.preflight.inbound import PortSpec
from llmos.preflight.reachability.listener import PROBE_PREFIX
from llmos.preflight.result import Status

__all__ = ["PortProbe", "probe_matrix", "probe_port"]

_UDP_TRIES = 3


@dataclass(frozen=True)
class PortProbe:
    """One cell of the matrix: peer, port, and how the probe went."""

    peer: str
    protocol: str
    port: int
    status: Status
    detail: str

    def to_dict(self) -> dict[str, object]:
        return {
            "port": self.port,
            "protocol": self.protocol,
            "status": self.status.value,
            "detail": self.detail,
        }


def _probe_tcp(peer: str, port: int, timeout: float) -> tuple[Status, str]:
    try:
        with socket.create_connection((peer, port), timeout=timeout):
            return Status.PASS, "connected"
    except ConnectionRefusedError:
        return Status.FAIL, "refused: nothing listens there, or a firewall rejects it"
    except TimeoutError:
        return Status.FAIL, f"no answer in {timeout:g} s: a firewall drops it?"
    except OSError as exc:
        return Status.FAIL, exc.strerror or str(exc)


def _probe_udp(peer: str, port: int, timeout: float) -> tuple[Status, str]:
    payload = PROBE_PREFIX + secrets.token_hex(8).encode()
    try:
        family, kind, proto, _, address = socket.getaddrinfo(peer, port, type=socket.SOCK_DGRAM)[0]
        with socket.socket(family, kind, proto) as sock:
            sock.settimeout(timeout / _UDP_TRIES)
            sock.connect(address)
            for _ in range(_UDP_TRIES):
                sock.send(payload)
                try:
                    while sock.recv(2048) != payload:
                        pass
                    return Status.PASS, "echoed"
                except TimeoutError:
                    continue
    except ConnectionRefusedError:
        return Status.FAIL, "port unreachable: nothing listens there"
    except OSError as exc:
        return Status.FAIL, exc.strerror or str(exc)
    return Status.FAIL, "no echo: blocked, or `llmos preflight --listen` is not running there"


def probe_port(peer: str, protocol: str, port: int, timeout: float) -> PortProbe:
    """Probe one port of one peer."""
    probe = _probe_tcp if protocol == "tcp" else _probe_udp
    status, detail = probe(peer, port, timeout)
    return PortProbe(peer, protocol, port, status, detail)


def probe_matrix(peers: list[str], specs: list[PortSpec], timeout: float) -> list[PortProbe]:
    """Probe every port of every peer, in parallel; results in peer, then port order."""
    cells = [
        (peer, spec.protocol, port) for peer in peers for spec in specs for port in spec.ports()
    ]
    if not cells:
        return []
    with ThreadPoolExecutor(max_workers=min(32, len(cells))) as pool:
        return list(pool.map(lambda cell: probe_port(cell[0], cell[1], cell[2], timeout), cells))
