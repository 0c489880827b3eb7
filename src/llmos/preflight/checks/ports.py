"""Local ports check: every port this node must serve is free.

A port counts as taken when binding it fails, or when ``/proc/net`` shows
a listener on it. Servers need every row of the inbound table, workers the
"All nodes" rows, and embedded mode only the API port (8443).
"""

from __future__ import annotations

import errno
import socket

from llmos.preflight.check import Check, CheckContext
from llmos.preflight.inbound import PortSpec
from llmos.preflight.procfs import Listener, listeners, socket_owners
from llmos.preflight.result import CheckResult, Status

__all__ = ["PortsCheck", "bind_problem", "describe_owners"]


def bind_problem(protocol: str, port: int) -> str | None:
    """Why ``port`` cannot be bound on all addresses, or None when it can."""
    kind = socket.SOCK_STREAM if protocol == "tcp" else socket.SOCK_DGRAM
    for family, address in ((socket.AF_INET, "0.0.0.0"), (socket.AF_INET6, "::")):
        try:
            sock = socket.socket(family, kind)
        except OSError:
            continue  # no IPv6 on this host
        with sock:
            if kind == socket.SOCK_STREAM:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            if family == socket.AF_INET6:
                sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
            try:
                sock.bind((address, port))
            except OSError as exc:
                if exc.errno == errno.EADDRNOTAVAIL:
                    continue
                return "in use" if exc.errno == errno.EADDRINUSE else exc.strerror or str(exc)
    return None


def describe_owners(ctx: CheckContext, taken: list[Listener]) -> dict[int, list[str]]:
    """For each port, the processes listening on it, as ``name (pid N)``."""
    owners = socket_owners(ctx.host, {s.inode for s in taken})
    named: dict[int, set[str]] = {}
    for sock in taken:
        if sock.inode in owners:
            named.setdefault(sock.port, set()).add(owners[sock.inode].describe())
    return {port: sorted(names) for port, names in named.items()}


class PortsCheck(Check):
    id = "ports"
    title = "Required ports free"

    def run(self, ctx: CheckContext) -> CheckResult:
        specs = ctx.required_ports()
        required = "free: " + ", ".join(str(s) for s in specs)
        open_sockets = listeners(ctx.host)
        busy: list[tuple[PortSpec, int, str]] = []
        for spec in specs:
            for port in spec.ports():
                problem = bind_problem(spec.protocol, port)
                listed = any(s.protocol == spec.protocol and s.port == port for s in open_sockets)
                if problem is None and listed:
                    problem = "in use"
                if problem is not None:
                    busy.append((spec, port, problem))
        taken = [s for s in open_sockets if any(s.port == p for _, p, _ in busy)]
        owners = describe_owners(ctx, taken)
        data = {
            "required": [str(s) for s in specs],
            "inUse": [
                {
                    "port": port,
                    "protocol": spec.protocol,
                    "problem": problem,
                    "processes": owners.get(port, []),
                }
                for spec, port, problem in busy
            ],
        }
        if not busy:
            return self.result(Status.PASS, "all free", required, data=data)
        parts = []
        for spec, port, problem in busy:
            who = owners.get(port)
            if who:
                parts.append(f"{port}/{spec.protocol} ({', '.join(who)})")
            elif problem != "in use":
                parts.append(f"{port}/{spec.protocol} ({problem})")
            else:
                owner = "owner unknown" if ctx.is_root else "run as root to see the owner"
                parts.append(f"{port}/{spec.protocol} ({owner})")
        return self.result(
            Status.FAIL,
            "in use: " + ", ".join(parts),
            required,
            "Stop the processes that hold these ports, or use another node (an embedded "
            "server can take another API port with `llmos server --port`).",
            data=data,
        )
