"""Hostname checks: DNS-1123 validity, localhost, and uniqueness against a real HTTPS server."""

from __future__ import annotations

from pathlib import Path

import pytest

from llmos.preflight import Mode, Status, run_preflight

from .hosttree import HostTree
from .nodeserver import TOKEN, node_server, write_tls


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("node-1", Status.PASS),
        ("gpu01.lab.example.com", Status.PASS),
        ("localhost", Status.FAIL),
        ("localhost.localdomain", Status.FAIL),
        ("My_Node", Status.FAIL),
        ("-node", Status.FAIL),
        ("a" * 64, Status.FAIL),
    ],
)
def test_hostname_validity(tree: HostTree, name: str, expected: Status) -> None:
    tree.hostname(name)
    result = run_preflight(tree.options(), only=["hostname"]).result("hostname")
    assert result.status is expected
    if expected is Status.FAIL:
        assert result.fix is not None and "hostnamectl set-hostname" in result.fix


def test_uniqueness_is_skipped_without_server(tree: HostTree) -> None:
    result = run_preflight(tree.options(), only=["hostname-unique"]).result("hostname-unique")
    assert result.status is Status.SKIP
    assert "--server" in (result.reason or "")


def test_unique_hostname_passes_with_verified_tls(tree: HostTree, tmp_path: Path) -> None:
    with node_server(tmp_path, ["server-1", "worker-1", "worker-2"]) as server:
        options = tree.options(server=server.url, token=TOKEN, ca_cert=server.ca_cert)
        result = run_preflight(options, only=["hostname-unique"]).result("hostname-unique")
    assert result.status is Status.PASS, result
    assert result.data["nodes"] == ["server-1", "worker-1", "worker-2"]


def test_duplicate_hostname_fails_even_on_a_later_page(tree: HostTree, tmp_path: Path) -> None:
    with node_server(tmp_path, ["server-1", "worker-1", "node-1"], page_size=1) as server:
        options = tree.options(server=server.url, token=TOKEN, ca_cert=server.ca_cert)
        result = run_preflight(options, only=["hostname-unique"]).result("hostname-unique")
    assert result.status is Status.FAIL
    assert "node-1 is already a node" in (result.measured or "")


def test_without_ca_cert_tls_is_unverified_and_warns(tree: HostTree, tmp_path: Path) -> None:
    with node_server(tmp_path, ["server-1"]) as server:
        options = tree.options(server=server.url, token=TOKEN)
        result = run_preflight(options, only=["hostname-unique"]).result("hostname-unique")
    assert result.status is Status.WARN
    assert "--ca-cert" in (result.fix or "")


def test_wrong_ca_fails_verification(tree: HostTree, tmp_path: Path) -> None:
    other = tmp_path / "other"
    other.mkdir()
    wrong_ca, _, _ = write_tls(other)
    with node_server(tmp_path, ["server-1"]) as server:
        options = tree.options(server=server.url, token=TOKEN, ca_cert=wrong_ca)
        result = run_preflight(options, only=["hostname-unique"]).result("hostname-unique")
    assert result.status is Status.FAIL
    assert "could not list nodes" in (result.measured or "")


def test_rejected_token_fails_with_a_fix(tree: HostTree, tmp_path: Path) -> None:
    with node_server(tmp_path, ["server-1"]) as server:
        options = tree.options(server=server.url, token="wrong", ca_cert=server.ca_cert)
        result = run_preflight(options, only=["hostname-unique"]).result("hostname-unique")
    assert result.status is Status.FAIL
    assert "refused the token" in (result.measured or "")


def test_unreachable_server_fails(tree: HostTree) -> None:
    options = tree.options(server="https://127.0.0.1:9", token=TOKEN)
    result = run_preflight(options, only=["hostname-unique"]).result("hostname-unique")
    assert result.status is Status.FAIL


def test_embedded_mode_skips_uniqueness(tree: HostTree) -> None:
    options = tree.options(mode=Mode.EMBEDDED, server="https://127.0.0.1:9", token=TOKEN)
    result = run_preflight(options, only=["hostname-unique"]).result("hostname-unique")
    assert result.status is Status.SKIP


@pytest.mark.parametrize(
    ("name", "suggested"),
    [
        ("My_Node", "my-node"),
        ("Café_1", "caf--1"),
        ("a" * 64, "a" * 63),
        ("node..1", "node.1"),
        ("gpu01.-lab", "gpu01.lab"),
        ("ÄÖ", "node-1"),
    ],
)
def test_the_name_a_fix_suggests_is_itself_valid(tree: HostTree, name: str, suggested: str) -> None:
    tree.hostname(name)
    result = run_preflight(tree.options(), only=["hostname"]).result("hostname")
    assert result.status is Status.FAIL
    assert result.fix == f"Rename the node, e.g.: hostnamectl set-hostname {suggested}"
    tree.hostname(suggested)
    assert run_preflight(tree.options(), only=["hostname"]).result("hostname").status is Status.PASS
