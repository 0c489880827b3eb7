"""The join handshake against a real ``llmos server`` over HTTPS on loopback.

The server here runs in embedded mode with ``--cluster-token-file``: it answers
``/v1-cluster/cluster-info`` (and a join to it is refused for having no
Kubernetes). tests/kube/test_join.py joins a kube-backed server.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import yaml

from cli.runner import Result, assert_fails, run_cli
from llmos import __version__
from llmos._lib.jointoken import JoinToken, ca_hash
from llmos.install.config import InstallConfig
from llmos.install.errors import JoinError
from llmos.install.join import ClusterInfo, check_join, endpoints, k3s_token
from llmos.install.k3s import secure_token
from server import RunningServer, free_port, start_server

SECRET = "the-cluster-join-secret"
NODE = "taken-node"


@pytest.fixture(scope="module")
def cluster_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    work = tmp_path_factory.mktemp("join")
    token_file = work / "token"
    token_file.write_text(SECRET + "\n")
    running = start_server(
        work / "data", "--cluster-token-file", str(token_file), "--node-name", NODE
    )
    try:
        yield running
    finally:
        running.stop()


def join_token(server: RunningServer) -> str:
    return str(JoinToken(SECRET, ca_hash(Path(server.ca).read_bytes())))


def join(tmp_path: Path, server_url: str, token: str, *extra: str) -> Result:
    return run_cli(
        tmp_path / "home",
        "install", "--server", server_url, "--token", token, "--role", "agent",
        "--skip-preflight", "--root", str(tmp_path / "root"), *extra,
    )  # fmt: skip


def test_cluster_info_needs_the_join_token(cluster_server: RunningServer) -> None:
    with cluster_server.client() as client:
        for headers in ({}, {"Authorization": "Bearer not-the-secret"}):
            response = client.get("/v1-cluster/cluster-info", headers=headers)
            assert response.status_code == 401
            body = response.json()
            assert body["kind"] == "Status" and "join token" in body["message"]
        for token in (SECRET, join_token(cluster_server)):
            response = client.get(
                "/v1-cluster/cluster-info", headers={"Authorization": f"Bearer {token}"}
            )
            assert response.status_code == 200, response.text
            info = response.json()
            assert info["kind"] == "ClusterInfo" and info["llmosVersion"] == __version__
            assert info["kubernetesVersion"] is None  # embedded mode
            assert info["kubernetesCAFingerprint"] is None  # and no Kubernetes CA
            assert info["nodes"] == [NODE]
            served = client.get("/v1-public/cacerts").content
            assert info["caFingerprint"] == ca_hash(served)


def test_a_server_without_a_cluster_token_takes_no_nodes(server: RunningServer) -> None:
    with server.client() as client:
        response = client.get(
            "/v1-cluster/cluster-info", headers={"Authorization": f"Bearer {SECRET}"}
        )
    assert response.status_code == 404 and "--cluster-token-file" in response.json()["message"]


def test_an_unusable_token_file_is_a_503_naming_it(cluster_server: RunningServer) -> None:
    """Read per request: a token file emptied or garbled later is the server's fault, not a 500."""
    token_file = cluster_server.data_dir.parent / "token"
    garbage = "K10nothex::the-garbled-secret-value"
    try:
        for content in ("", "\n", garbage + "\n", "short\n"):
            token_file.write_text(content)
            with cluster_server.client() as client:
                response = client.get(
                    "/v1-cluster/cluster-info", headers={"Authorization": f"Bearer {SECRET}"}
                )
            assert response.status_code == 503, (content, response.text)
            body = response.json()
            assert body["kind"] == "Status" and body["reason"] == "ServiceUnavailable"
            assert "misconfigured" in body["message"] and str(token_file) in body["message"]
            assert "garbled" not in body["message"]
    finally:
        token_file.write_text(SECRET + "\n")
    log = cluster_server.log()
    assert f"the cluster token file {token_file} is unusable" in log
    assert "the-garbled-secret" not in log  # the file's content is not logged
    with cluster_server.client() as client:
        response = client.get(
            "/v1-cluster/cluster-info", headers={"Authorization": f"Bearer {SECRET}"}
        )
    assert response.status_code == 200


def test_a_token_file_that_is_missing_or_short_stops_the_server(tmp_path: Path) -> None:
    short = tmp_path / "short"
    short.write_text("tiny\n")
    for path, problem in ((tmp_path / "nope", "cannot read"), (short, "at least 16")):
        result = run_cli(
            tmp_path / "home", "server", "--data-dir", str(tmp_path / "d"),
            "--cluster-token-file", str(path), "--skip-preflight",
        )  # fmt: skip
        assert_fails(result, 2, "cluster_token_file", problem)


def test_join_refuses_a_name_the_cluster_already_has(
    cluster_server: RunningServer, tmp_path: Path
) -> None:
    result = join(tmp_path, cluster_server.url, join_token(cluster_server), "--node-name", NODE)
    assert_fails(result, 1, f"a node named {NODE!r} is already in the cluster", "--node-name")
    assert not (tmp_path / "root").exists()


def test_join_refuses_an_embedded_server(cluster_server: RunningServer, tmp_path: Path) -> None:
    result = join(tmp_path, cluster_server.url, join_token(cluster_server), "--node-name", "new")
    assert_fails(result, 1, "embedded mode", "--cluster-init")


def test_join_refuses_a_server_whose_ca_is_not_the_pinned_one(
    cluster_server: RunningServer, tmp_path: Path
) -> None:
    wrong = str(JoinToken(SECRET, "0" * 64))
    result = join(tmp_path, cluster_server.url, wrong)
    assert_fails(result, 1, "the join token pins " + "0" * 64, "/etc/llmos/join-token")


def test_join_refuses_a_wrong_secret_and_a_bare_token(
    cluster_server: RunningServer, tmp_path: Path
) -> None:
    pin = ca_hash(Path(cluster_server.ca).read_bytes())
    wrong = str(JoinToken("another-long-cluster-secret", pin))
    assert_fails(join(tmp_path, cluster_server.url, wrong), 1, "refused the token")
    assert_fails(join(tmp_path, cluster_server.url, SECRET), 1, "has no CA hash", "--ca-cert")
    # A bare token is fine with the CA given another way.
    result = join(tmp_path, cluster_server.url, SECRET, "--ca-cert", cluster_server.ca)
    assert_fails(result, 1, "embedded mode")  # got as far as the cluster's answer


def test_join_names_an_unreachable_server(tmp_path: Path) -> None:
    url = f"https://127.0.0.1:{free_port()}"
    result = join(tmp_path, url, str(JoinToken(SECRET, "0" * 64)))
    assert_fails(result, 1, f"cannot reach the LLMOS server at {url}", "8443")


def test_endpoints_of_a_server_url() -> None:
    assert endpoints("https://10.0.0.1:6443") == ("https://10.0.0.1:6443", "https://10.0.0.1:8443")
    assert endpoints("https://h:8443") == ("https://h:6443", "https://h:8443")
    assert endpoints("https://[fd00::1]:6443") == (
        "https://[fd00::1]:6443",
        "https://[fd00::1]:8443",
    )
    for bad in ("https://h:99999", "https://a:b:6443", "https://h:0", "https://:6443"):
        with pytest.raises(ValueError, match="https://HOST:6443"):
            endpoints(bad)


@pytest.mark.parametrize(
    ("server", "problem"),
    [("https://h:99999", "out of range"), ("https://a:b:6443", "integer"), ("https://h:0", "port")],
)
def test_a_server_url_without_a_usable_port_is_a_usage_error(
    tmp_path: Path, server: str, problem: str
) -> None:
    result = join(tmp_path, server, str(JoinToken(SECRET, "0" * 64)))
    assert_fails(result, 2, "--server", server, problem)
    assert not (tmp_path / "root").exists()


def test_k3s_token_is_pinned_to_the_server_ca_the_cluster_names() -> None:
    pinned = ClusterInfo(__version__, "v1.36.9+k3s2", "x", (), kubernetes_ca_hash="ef" * 32)
    assert k3s_token(pinned, SECRET) == f"K10{'ef' * 32}::server:{SECRET}"
    assert k3s_token(pinned, SECRET) == secure_token("ef" * 32, SECRET)
    unknown = ClusterInfo(__version__, "v1.36.9+k3s2", "x", ())
    with pytest.raises(JoinError, match="--allow-unpinned-k3s-join") as info:
        k3s_token(unknown, SECRET)
    assert "6443" in str(info.value) and SECRET not in str(info.value)
    assert k3s_token(unknown, SECRET, allow_unpinned=True) == SECRET


def test_check_join_versions() -> None:
    agent = InstallConfig(role="agent", server="https://h:6443", token=SECRET)
    info = ClusterInfo(__version__, "v1.36.9+k3s2", "x", ("a",))
    # A node that chose no version takes the cluster's k3s release.
    assert check_join(info, agent, "b", version_given=False) == "v1.36.9+k3s2"
    with pytest.raises(JoinError, match=r"kubernetesVersion is v1\.35\.0"):
        pinned = agent.model_copy(update={"kubernetes_version": "v1.35.0+k3s1"})
        check_join(info, pinned, "b", version_given=True)
    with pytest.raises(JoinError, match=r"the server runs LLMOS 9\.9\.0"):
        check_join(ClusterInfo("9.9.0", "v1.36.9+k3s2", "x", ()), agent, "b", version_given=False)
    # A plain Kubernetes version (not a k3s release) must match the pinned one's.
    plain = ClusterInfo(__version__, "v1.36.3", "x", ())
    assert check_join(plain, agent, "b", version_given=False) == agent.kubernetes_version


def test_the_join_written_under_a_fixture_root(tmp_path: Path) -> None:
    """What a successful join writes: k3s joins 6443 pinned to its server CA (see tests/kube)."""
    config = InstallConfig(
        role="agent", server="https://h:6443", token=str(JoinToken(SECRET, "a" * 64))
    )
    from llmos.install.plan import install_plan, write_files

    info = ClusterInfo(__version__, "v1.36.9+k3s2", "a" * 64, (), kubernetes_ca_hash="b" * 64)
    write_files(install_plan(config, k3s_token=k3s_token(info, SECRET)), tmp_path)
    written = yaml.safe_load((tmp_path / "etc/rancher/k3s/config.yaml").read_text())
    # The k3s server CA's hash, not the LLMOS CA's of the join token.
    assert written == {"server": "https://h:6443", "token": f"K10{'b' * 64}::server:{SECRET}"}


@pytest.fixture
def fake_handshake(monkeypatch: pytest.MonkeyPatch) -> list[ClusterInfo]:
    """The CLI's handshake answering the first ClusterInfo of the list (in-process runs)."""
    import llmos.install.join as join_module

    answers: list[ClusterInfo] = []
    monkeypatch.setattr(join_module, "handshake", lambda *args, **kwargs: answers[0])
    return answers


def cli_join(tmp_path: Path, *extra: str) -> tuple[int, str]:
    from typer.testing import CliRunner

    from llmos.cli.main import app

    token = str(JoinToken(SECRET, "a" * 64))
    args = ["install", "--server", "https://h:6443", "--token", token, "--role", "agent"]
    args += ["--node-name", "new", "--skip-preflight", *extra]
    result = CliRunner().invoke(app, args)
    return result.exit_code, result.output + (result.stderr if result.stderr_bytes else "")


def test_a_joining_nodes_dry_run_shows_no_secret(
    fake_handshake: list[ClusterInfo], tmp_path: Path
) -> None:
    from llmos.install.secrets import HIDDEN

    fake_handshake.append(
        ClusterInfo(__version__, "v1.36.9+k3s2", "a" * 64, (), kubernetes_ca_hash="c" * 64)
    )
    code, output = cli_join(tmp_path, "--dry-run")
    assert code == 0, output
    assert SECRET not in output
    assert f"token: K10{'c' * 64}::server:{HIDDEN}" in output
    # The same join for real (files only) writes the secret where k3s reads it.
    code, output = cli_join(tmp_path, "--root", str(tmp_path / "root"))
    assert code == 0, output
    assert SECRET not in output
    written = yaml.safe_load((tmp_path / "root/etc/rancher/k3s/config.yaml").read_text())
    assert written["token"] == f"K10{'c' * 64}::server:{SECRET}"


def test_a_server_that_names_no_kubernetes_ca_is_refused_unless_accepted(
    fake_handshake: list[ClusterInfo], tmp_path: Path
) -> None:
    fake_handshake.append(ClusterInfo(__version__, "v1.36.9+k3s2", "a" * 64, ()))
    root = tmp_path / "root"
    code, output = cli_join(tmp_path, "--root", str(root))
    assert code == 1 and "error: the server did not say which CA" in output, output
    assert "--allow-unpinned-k3s-join" in output and "Traceback" not in output
    assert not root.exists()
    code, output = cli_join(tmp_path, "--root", str(root), "--allow-unpinned-k3s-join")
    assert code == 0, output
    assert "warning:" in output and "unpinned" in output and SECRET not in output
    written = yaml.safe_load((root / "etc/rancher/k3s/config.yaml").read_text())
    assert written["token"] == SECRET


def test_cluster_info_over_plain_http_is_not_served(cluster_server: RunningServer) -> None:
    with pytest.raises(httpx.HTTPError):
        httpx.get(f"http://127.0.0.1:{cluster_server.port}/v1-cluster/cluster-info", timeout=5)
