"""``--listen`` in one network namespace, ``--peer`` from another, joined by a real veth pair.

One port is blocked with iptables on the listening side and must be
reported failing; the others, including the UDP echo on 8472, must pass.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest

from .conftest import require_root_and_tools
from .netns import Namespace, namespace_pair

pytestmark = pytest.mark.slow

PREFLIGHT = [sys.executable, "-m", "llmos.cli.preflight"]
BLOCKED = 10250


@pytest.fixture
def namespaces() -> Iterator[tuple[Namespace, Namespace]]:
    require_root_and_tools("ip", "iptables")
    with namespace_pair() as pair:
        yield pair


@contextmanager
def listening(ns: Namespace, *extra: str) -> Iterator[dict[str, Any]]:
    """Run ``--listen`` in ``ns`` until the block ends; yield its first JSON line."""
    process = subprocess.Popen(
        ns.command(*PREFLIGHT, "--listen", "--listen-timeout", "60", "-o", "json", *extra),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        assert line, process.stderr.read() if process.stderr else "listener printed nothing"
        yield json.loads(line)
    finally:
        process.terminate()
        try:
            assert process.wait(timeout=10) == 0
        finally:
            if process.poll() is None:
                process.kill()
                process.wait()


def peer(ns: Namespace, target: str, *extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ns.command(*PREFLIGHT, "--peer", target, "--peer-timeout", "1", *extra),
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_peer_matrix_reports_the_blocked_port(namespaces: tuple[Namespace, Namespace]) -> None:
    a, b = namespaces
    a.run("iptables", "-A", "INPUT", "-p", "tcp", "--dport", str(BLOCKED), "-j", "DROP")
    with listening(a, "--role", "server") as ready:
        ports = {(p["port"], p["protocol"]): p["status"] for p in ready["ports"]}
        assert ports == {
            (2379, "tcp"): "listening",
            (2380, "tcp"): "listening",
            (5001, "tcp"): "listening",
            (6443, "tcp"): "listening",
            (8443, "tcp"): "listening",
            (8472, "udp"): "listening",
            (10250, "tcp"): "listening",
        }
        done = peer(b, a.address, "--role", "server", "--peer-role", "server", "-o", "json")
        table = peer(b, a.address, "--role", "server", "--peer-role", "server")
    assert done.returncode == 1, done.stderr
    report = json.loads(done.stdout)
    (result,) = report["results"]
    assert result["id"] == f"reachability/{a.address}"
    assert result["status"] == "fail"
    cells = {(c["port"], c["protocol"]): c["status"] for c in result["data"]["ports"]}
    assert cells.pop((BLOCKED, "tcp")) == "fail"
    assert cells == {
        (2379, "tcp"): "pass",
        (2380, "tcp"): "pass",
        (5001, "tcp"): "pass",
        (6443, "tcp"): "pass",
        (8443, "tcp"): "pass",
        (8472, "udp"): "pass",
    }
    assert f"{BLOCKED}/tcp" in result["fix"]
    assert table.returncode == 1
    assert "Reachability: peer x port" in table.stdout


def test_worker_to_server_needs_no_etcd_and_passes(namespaces: tuple[Namespace, Namespace]) -> None:
    a, b = namespaces
    with listening(a, "--role", "server"):
        done = peer(b, a.address, "--role", "worker", "--peer-role", "server", "-o", "json")
    assert done.returncode == 0, done.stdout + done.stderr
    cells = json.loads(done.stdout)["results"][0]["data"]["ports"]
    assert {c["port"] for c in cells} == {5001, 6443, 8443, 8472, 10250}
    assert {c["status"] for c in cells} == {"pass"}


def test_nothing_listening_fails_every_port(namespaces: tuple[Namespace, Namespace]) -> None:
    a, b = namespaces
    done = peer(b, a.address, "--role", "worker", "--peer-role", "worker", "-o", "json")
    assert done.returncode == 1
    cells = json.loads(done.stdout)["results"][0]["data"]["ports"]
    assert {c["status"] for c in cells} == {"fail"}


def test_listener_closes_its_ports_on_exit(namespaces: tuple[Namespace, Namespace]) -> None:
    a, _ = namespaces
    with listening(a, "--role", "worker"):
        pass
    done = a.run(*PREFLIGHT, "--check", "ports", "--role", "worker", "-o", "json", "--quick")
    assert json.loads(done.stdout)["results"][0]["status"] == "pass"


def test_cluster_ports_taken_in_a_namespace_fail(namespaces: tuple[Namespace, Namespace]) -> None:
    a, _ = namespaces
    with listening(a, "--role", "server"):
        done = subprocess.run(
            a.command(*PREFLIGHT, "--check", "ports", "--role", "server", "-o", "json", "--quick"),
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert done.returncode == 1
    in_use = json.loads(done.stdout)["results"][0]["data"]["inUse"]
    assert {(p["port"], p["protocol"]) for p in in_use} == {
        (2379, "tcp"),
        (2380, "tcp"),
        (5001, "tcp"),
        (6443, "tcp"),
        (8443, "tcp"),
        (8472, "udp"),
        (10250, "tcp"),
    }
