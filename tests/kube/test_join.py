"""Joining a kube-backed LLMOS server, and the first server's shared Secrets on a control plane.

A second ``llmos server --store kube`` (with ``--cluster-token-file``) runs on
tests/kube's server control plane; ``llmos install --role agent`` asks it for
the cluster info over HTTPS, pinned by the join token, and writes its k3s
config under a fixture root (k3s itself cannot run here), with k3s' secure
token pinned to the control plane's CA.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from cli.runner import assert_fails, run_cli
from kubenodes import KubeNodes, wait_until
from kubeplane import apply
from llmos._lib.jointoken import JoinToken, ca_hash
from llmos.install.config import InstallConfig
from llmos.install.manifests import ClusterOptions, manifests
from llmos.install.secrets import ClusterSecrets
from server import RunningServer, free_port

from .conftest import KubeServer

SECRET = "the-kube-cluster-join-secret"


@pytest.fixture(scope="module")
def joinable(
    kube_server: KubeServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[RunningServer]:
    """Another replica on kube_server's plane (a follower), holding the cluster token."""
    work = tmp_path_factory.mktemp("kube-join")
    (work / "token").write_text(SECRET)
    kubeconfig = kube_server.cluster.write_kubeconfig(
        work / "kubeconfig.yaml", kube_server.cluster.plain_token
    )
    args = [
        "--store", "kube", "--kubeconfig", str(kubeconfig), "--skip-preflight",
        "--cluster-token-file", str(work / "token"), "--node-name", "replica-2",
    ]  # fmt: skip
    node = {"apiVersion": "v1", "kind": "Node", "metadata": {"name": "gpu-a"}}
    kube_server.kube.post("/api/v1/nodes", json=node).raise_for_status()
    running = RunningServer(work / "data", free_port(), args).start(timeout=120)
    try:
        yield running
    finally:
        running.stop()
        kube_server.kube.delete("/api/v1/nodes/gpu-a")


def test_a_node_joins_after_the_handshake(
    joinable: RunningServer, kube_server: KubeServer, tmp_path: Path
) -> None:
    token = str(JoinToken(SECRET, ca_hash(Path(joinable.ca).read_bytes())))
    with joinable.client() as client:
        info = client.get(
            "/v1-cluster/cluster-info", headers={"Authorization": f"Bearer {token}"}
        ).json()
    # The server's role may list nodes (install/rbac.py), and reads the API server's version.
    assert info["kubernetesVersion"] == "v1.36.3" and "gpu-a" in info["nodes"]
    # Outside a pod: the CA of the server's kube connection (its kubeconfig's).
    server_ca = ca_hash(kube_server.cluster.ca_file.read_bytes())
    assert info["kubernetesCAFingerprint"] == server_ca != info["caFingerprint"]

    def join(name: str, *extra: str) -> Any:
        return run_cli(
            tmp_path / "home",
            "install", "--server", joinable.url, "--token", token, "--role", "agent",
            "--node-name", name, "--skip-preflight", *extra,
        )  # fmt: skip

    assert_fails(
        join("gpu-a", "--root", str(tmp_path / "gpu-a")),
        1,
        "a node named 'gpu-a' is already in the cluster",
    )
    dry = join("gpu-b", "--dry-run")
    assert dry.code == 0, dry
    assert SECRET not in dry.stdout and SECRET not in dry.stderr
    assert f"token: K10{server_ca}::server:<hidden-cluster-token>" in dry.stdout
    result = join("gpu-b", "--root", str(tmp_path / "gpu-b"))
    assert result.code == 0, result
    assert "Kubernetes v1.36.3" in result.stdout and "'gpu-b' is free" in result.stdout
    assert SECRET not in result.stdout and SECRET not in result.stderr
    written = yaml.safe_load((tmp_path / "gpu-b/etc/rancher/k3s/config.yaml").read_text())
    # k3s joins the API server's port with k3s' secure token, pinned to the API server's CA.
    assert written == {
        "server": "https://127.0.0.1:6443",
        "token": f"K10{server_ca}::server:{SECRET}",
        "node-name": "gpu-b",
    }
    assert (tmp_path / "gpu-b/etc/systemd/system/k3s-agent.service").exists()


@pytest.mark.slow
def test_replicas_share_the_first_servers_secrets(kube_nodes: KubeNodes) -> None:
    ns = "llmos-install-secrets"
    config = InstallConfig(cluster_init=True, token=SECRET)
    secrets = ClusterSecrets.generate(config, ["llmos-server"])
    objects = manifests(ClusterOptions(namespace=ns, replicas=2), secrets)
    with kube_nodes.cluster.client() as client:
        for obj in objects:
            apply(client, obj)

        def available() -> dict[str, Any] | None:
            deployment = client.get(f"/apis/apps/v1/namespaces/{ns}/deployments/llmos-server")
            status = deployment.json().get("status", {})
            return deployment.json() if status.get("availableReplicas") == 2 else None

        deployment = wait_until(available, "two llmos-server replicas", timeout=120)
        tls = client.get(f"/api/v1/namespaces/{ns}/secrets/llmos-tls").json()
        assert tls["type"] == "kubernetes.io/tls" and set(tls["data"]) == {
            "tls.crt",
            "tls.key",
            "ca.crt",
        }
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    env = {e["name"]: e for e in container["env"]}
    assert env["LLMOS_BOOTSTRAP_PASSWORD"]["valueFrom"]["secretKeyRef"] == {
        "name": "llmos-bootstrap",
        "key": "password",
    }
    assert "--tls-cert=/etc/llmos/tls/tls.crt" in container["args"]
    assert "--cluster-token-file=/etc/llmos/cluster/token" in container["args"]
