"""Hostname uniqueness against a real ``llmos server`` that takes joining nodes.

The user passes what ``llmos install`` joins with: ``--server`` and the
cluster join token (``K10<CA hash>::<secret>``, or the bare secret with
``--ca-cert``). The server runs in embedded mode with ``--cluster-token-file``
and a fixed node name, so the cluster has exactly one node, ``taken-node``.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from llmos._lib.jointoken import JoinToken, ca_hash
from llmos.cli import preflight as preflight_cli
from llmos.preflight.checks.hostname_unique import llmos_url
from server import RunningServer, start_server

from .hosttree import HostTree

SECRET = "the-cluster-join-secret"
TAKEN = "taken-node"


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    work = tmp_path_factory.mktemp("cluster")
    (work / "token").write_text(SECRET + "\n")
    running = start_server(
        work / "data", "--cluster-token-file", str(work / "token"), "--node-name", TAKEN,
        "--skip-preflight",
    )  # fmt: skip
    try:
        yield running
    finally:
        running.stop()


def _join_token(cluster: RunningServer) -> str:
    return str(JoinToken(SECRET, ca_hash(Path(cluster.ca).read_bytes())))


def _unique(tree: HostTree, server: str, token: str, *extra: str) -> tuple[int, dict[str, object]]:
    app = typer.Typer()

    @app.callback()
    def _root() -> None:
        """Two commands' worth of app."""

    preflight_cli.register(app)
    args = [
        "preflight", "--root", str(tree.root), "--data-dir", str(tree.data_dir), "--quick",
        "--check", "hostname-unique", "-o", "json", "--server", server, "--token", token, *extra,
    ]  # fmt: skip
    result = CliRunner().invoke(app, args)
    report = json.loads(result.stdout)
    outcome: dict[str, object] = report["results"][0]
    return result.exit_code, outcome


def test_the_join_token_finds_a_taken_name(tree: HostTree, cluster: RunningServer) -> None:
    tree.hostname(TAKEN)
    code, result = _unique(tree, cluster.url, _join_token(cluster))
    assert code == 1
    assert result["status"] == "fail"
    assert result["measured"] == f"{TAKEN} is already a node of the cluster"
    assert "hostnamectl set-hostname" in str(result["fix"])


def test_a_free_name_passes_with_tls_pinned_by_the_join_token(
    tree: HostTree, cluster: RunningServer
) -> None:
    code, result = _unique(tree, cluster.url, _join_token(cluster))
    assert (code, result["status"]) == (0, "pass"), result
    assert result["measured"] == "node-1 not among 1 node(s)"
    assert result["data"] == {"hostname": "node-1", "server": cluster.url, "nodes": [TAKEN]}


def test_the_bare_secret_with_ca_cert_passes(tree: HostTree, cluster: RunningServer) -> None:
    code, result = _unique(tree, cluster.url, SECRET, "--ca-cert", cluster.ca)
    assert (code, result["status"]) == (0, "pass"), result


def test_the_bare_secret_without_ca_cert_warns_unverified(
    tree: HostTree, cluster: RunningServer
) -> None:
    code, result = _unique(tree, cluster.url, SECRET)
    assert (code, result["status"]) == (0, "warn"), result
    assert result["reason"] == "TLS certificate of the server was not verified"
    assert "--ca-cert" in str(result["fix"])


def test_a_token_pinning_another_ca_fails_before_sending_the_secret(
    tree: HostTree, cluster: RunningServer
) -> None:
    code, result = _unique(tree, cluster.url, str(JoinToken(SECRET, "0" * 64)))
    assert (code, result["status"]) == (1, "fail")
    assert "the join token pins " + "0" * 64 in str(result["measured"])


def test_a_wrong_token_fails_and_names_the_join_token(
    tree: HostTree, cluster: RunningServer
) -> None:
    code, result = _unique(tree, cluster.url, "not-the-secret", "--ca-cert", cluster.ca)
    assert (code, result["status"]) == (1, "fail")
    assert "refused the token" in str(result["measured"])
    assert "/etc/llmos/join-token" in str(result["measured"])


@pytest.mark.parametrize(
    ("server", "url"),
    [
        ("https://10.0.0.5:6443", "https://10.0.0.5:8443"),
        ("https://10.0.0.5", "https://10.0.0.5:8443"),
        ("https://srv.example:8443/", "https://srv.example:8443"),
        ("https://127.0.0.1:31443", "https://127.0.0.1:31443"),
        ("https://[fd00::5]:6443", "https://[fd00::5]:8443"),
    ],
)
def test_server_url_is_taken_like_llmos_install_takes_it(server: str, url: str) -> None:
    assert llmos_url(server) == url


def test_a_server_that_is_not_a_url_fails_with_a_fix(tree: HostTree) -> None:
    code, result = _unique(tree, "srv.example", SECRET)
    assert (code, result["status"]) == (1, "fail")
    assert "is not a URL" in str(result["measured"])
