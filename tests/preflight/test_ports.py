"""Port checks against real listeners that the tests open on this machine (127.0.0.1)."""

from __future__ import annotations

import os
import random
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from llmos.preflight import Mode, Role, Status, run_preflight
from llmos.preflight.checks.ports import bind_problem
from llmos.preflight.host import HostFiles
from llmos.preflight.inbound import inbound_ports
from llmos.preflight.options import PreflightOptions
from llmos.preflight.procfs import listeners, socket_owners


@contextmanager
def tcp_listener(port: int = 0, address: str = "127.0.0.1") -> Iterator[int]:
    with socket.socket() as sock:
        sock.bind((address, port))
        sock.listen()
        yield sock.getsockname()[1]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


def _live(tmp_path: Path, **overrides: object) -> PreflightOptions:
    return PreflightOptions(data_dir=tmp_path, quick=True, **overrides)  # type: ignore[arg-type]


def test_free_api_port_passes(tmp_path: Path) -> None:
    port = _free_port()
    options = _live(tmp_path, mode=Mode.EMBEDDED, api_port=port)
    result = run_preflight(options, only=["ports"]).result("ports")
    assert result.status is Status.PASS
    assert result.data["required"] == [f"{port}/tcp"]


def test_taken_port_fails_and_names_this_process(tmp_path: Path) -> None:
    with tcp_listener() as port:
        options = _live(tmp_path, mode=Mode.EMBEDDED, api_port=port)
        result = run_preflight(options, only=["ports"]).result("ports")
    assert result.status is Status.FAIL
    assert f"{port}/tcp" in (result.measured or "")
    assert f"(pid {os.getpid()})" in (result.measured or "")
    assert result.data["inUse"][0]["port"] == port


def test_udp_port_in_use_is_detected() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("0.0.0.0", 0))
        port = sock.getsockname()[1]
        assert bind_problem("udp", port) == "in use"
        found = [s for s in listeners(HostFiles()) if s.protocol == "udp" and s.port == port]
        assert found
        owners = socket_owners(HostFiles(), {s.inode for s in found})
        assert {p.pid for p in owners.values()} == {os.getpid()}
    assert bind_problem("udp", port) is None


def test_server_and_worker_port_sets() -> None:
    server = [str(p) for p in inbound_ports(Role.SERVER)]
    worker = [str(p) for p in inbound_ports(Role.WORKER)]
    assert server == ["2379-2380/tcp", "5001/tcp", "6443/tcp", "8443/tcp", "8472/udp", "10250/tcp"]
    assert worker == ["5001/tcp", "6443/tcp", "8443/tcp", "8472/udp", "10250/tcp"]
    from_worker = [str(p) for p in inbound_ports(Role.SERVER, Role.WORKER)]
    assert "2379-2380/tcp" not in from_worker and "6443/tcp" in from_worker


def test_listener_in_nodeport_range_warns(tmp_path: Path) -> None:
    for _ in range(50):
        port = random.randint(30000, 32767)
        try:
            with tcp_listener(port, "0.0.0.0"):
                result = run_preflight(_live(tmp_path), only=["nodeport-range"]).result(
                    "nodeport-range"
                )
            break
        except OSError:
            continue
    else:
        pytest.fail("no free port in 30000-32767")
    assert result.status is Status.WARN
    assert f"{port} " in (result.measured or "") + " "
    assert f"(pid {os.getpid()})" in (result.measured or "")


def test_ipv6_listeners_are_parsed() -> None:
    if not socket.has_ipv6:
        pytest.skip("no IPv6 in this kernel")
    with socket.socket(socket.AF_INET6) as sock:
        try:
            sock.bind(("::1", 0))
        except OSError:
            pytest.skip("no IPv6 loopback address")
        sock.listen()
        port = sock.getsockname()[1]
        found = [s for s in listeners(HostFiles()) if s.port == port]
    assert [(s.protocol, s.address) for s in found] == [
        ("tcp", "0000:0000:0000:0000:0000:0000:0000:0001")
    ]
