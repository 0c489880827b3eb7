"""Processes and listening sockets, read from ``/proc`` through `HostFiles`.

Used by the Kubernetes, firewalld and port checks to name what is running
and who listens where. Reading other users' file descriptors needs root;
without it, owners of sockets may stay unknown.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from llmos._lib.quantity import is_whole_number
from llmos.preflight.host import HostFiles

__all__ = ["Listener", "Process", "listeners", "processes", "socket_owners"]

_TCP_LISTEN = "0A"
_INTERPRETER = re.compile(r"^(python[0-9.]*|perl|ruby|node|(ba|da|z)?sh)$")
_UDP_UNCONNECTED = "07"


@dataclass(frozen=True)
class Process:
    """A running process: pid, short name (comm) and command line."""

    pid: int
    name: str
    cmdline: tuple[str, ...]

    @property
    def names(self) -> set[str]:
        """Names it may be known by: comm, argv[0]'s base name, and the script an interpreter runs.

        The script is the first argument that is not an option, counted only when argv[0]
        is an interpreter (``python3 -s /usr/sbin/firewalld``): ``less /var/log/k3s`` is
        not k3s.
        """
        found = {self.name}
        if not self.cmdline:
            return found
        program = _base(self.cmdline[0])
        found.add(program)
        if _INTERPRETER.match(program):
            script = next((a for a in self.cmdline[1:] if not a.startswith("-")), None)
            if script is not None:
                found.add(_base(script))
        return found

    def describe(self) -> str:
        """``name (pid N)``."""
        return f"{self.name} (pid {self.pid})"


@dataclass(frozen=True)
class Listener:
    """A socket bound for incoming traffic: TCP in LISTEN, or an unconnected UDP socket."""

    protocol: str
    address: str
    port: int
    inode: int


def _base(path: str) -> str:
    return path.rsplit("/", 1)[-1]


def processes(host: HostFiles) -> list[Process]:
    """Every process visible under ``/proc``."""
    found = []
    for entry in host.entries("/proc"):
        if not is_whole_number(entry):
            continue
        comm = host.read_text(f"/proc/{entry}/comm")
        if comm is None:
            continue
        raw = host.read_bytes(f"/proc/{entry}/cmdline") or b""
        args = tuple(a.decode(errors="replace") for a in raw.split(b"\0") if a)
        found.append(Process(int(entry), comm.strip(), args))
    return found


def _parse_address(text: str) -> tuple[str, int] | None:
    """``(address, port)`` of a ``/proc/net`` address column, or None if it is malformed."""
    address, _, port = text.partition(":")
    try:
        if len(address) == 8:
            octets = bytes.fromhex(address)[::-1]
            host = ".".join(str(b) for b in octets)
        elif len(address) == 32:
            words = [bytes.fromhex(address[i : i + 8])[::-1].hex() for i in range(0, 32, 8)]
            joined = "".join(words)
            host = ":".join(joined[i : i + 4] for i in range(0, 32, 4))
        else:
            return None
        return host, int(port, 16)
    except ValueError:
        return None


def listeners(host: HostFiles) -> list[Listener]:
    """Listening TCP sockets and bound UDP sockets, IPv4 and IPv6; malformed lines are skipped."""
    found = []
    for table, protocol, state in (
        ("tcp", "tcp", _TCP_LISTEN),
        ("tcp6", "tcp", _TCP_LISTEN),
        ("udp", "udp", _UDP_UNCONNECTED),
        ("udp6", "udp", _UDP_UNCONNECTED),
    ):
        text = host.read_text(f"/proc/net/{table}") or ""
        for line in text.splitlines()[1:]:
            fields = line.split()
            if len(fields) < 10 or fields[3] != state or not is_whole_number(fields[9]):
                continue
            parsed = _parse_address(fields[1])
            if parsed is not None:
                found.append(Listener(protocol, parsed[0], parsed[1], int(fields[9])))
    return found


def socket_owners(host: HostFiles, inodes: Iterable[int]) -> dict[int, Process]:
    """Which process holds each socket inode, for those that can be seen."""
    wanted = {f"socket:[{inode}]": inode for inode in inodes}
    owners: dict[int, Process] = {}
    if not wanted:
        return owners
    for process in processes(host):
        for fd in host.entries(f"/proc/{process.pid}/fd"):
            target = host.readlink(f"/proc/{process.pid}/fd/{fd}")
            if target in wanted:
                owners.setdefault(wanted[target], process)
        if len(owners) == len(wanted):
            break
    return owners
