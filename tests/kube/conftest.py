"""Fixtures of tests/kube: ``llmos server --store kube`` on a control plane of its own.

The server gets its own etcd and API server, so its controllers (which would
serve a ModelService, start a notebook or a Ray head) never see the objects other
tests put on the shared control plane. One server per session: its admin user
(a custom resource) outlives any one server, and only the first start has a
bootstrap password. ``server`` and ``admin`` here are that server and its admin
client, so API tests imported from tests/api and tests/auth run against it.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import httpx
import pytest

from kubenodes import KubeNodes, running_nodes
from kubeplane import PLAIN_USER, KubeCluster, apply, apply_crds, control_plane
from llmos.install.rbac import server_rbac
from server import RunningServer, free_port

PLAIN_SUBJECT = {"kind": "User", "name": PLAIN_USER, "apiGroup": "rbac.authorization.k8s.io"}


@dataclass
class KubeServer:
    server: RunningServer
    cluster: KubeCluster  # the server's own control plane
    admin: httpx.Client  # the LLMOS API as admin
    kube: httpx.Client  # the Kubernetes API as its admin


@pytest.fixture(scope="session")
def kube_server_plane(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KubeCluster]:
    with control_plane(tmp_path_factory.mktemp("kube-server-plane")) as cluster:
        with cluster.client() as client:
            apply_crds(client)
        yield cluster


@pytest.fixture(scope="session")
def kube_server(
    kube_server_plane: KubeCluster, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[KubeServer]:
    plane = kube_server_plane
    # The server runs as a plain user holding only LLMOS's own ClusterRole: every
    # test through it also proves that the role is enough.
    with plane.client() as client:
        for obj in server_rbac("llmos-system", subject=PLAIN_SUBJECT):
            apply(client, obj)
    work = tmp_path_factory.mktemp("kube-server")
    kubeconfig = plane.write_kubeconfig(work / "kubeconfig.yaml", plane.plain_token)
    data = work / "data"
    args = ["--store", "kube", "--kubeconfig", str(kubeconfig), "--skip-preflight"]
    running = RunningServer(data, free_port(), args).start(timeout=120)
    try:
        token = running.setup_admin()
        running.admin_token = token  # type: ignore[attr-defined]  (as tests/conftest.py's server)
        with running.client(token) as admin, plane.client() as kube:
            yield KubeServer(running, plane, admin, kube)
    finally:
        assert running.stop() == 0, running.log()


# Where kwok takes the fake pods' IPs on the server's plane: loopback, so a test can
# stand a real engine in for a pod's container (kwok runs none) and chat through it.
POD_CIDR = "127.0.100.0/24"


@pytest.fixture(scope="session")
def kube_server_nodes(kube_server: KubeServer) -> Iterator[KubeNodes]:
    """The server's control plane with controllers, a scheduler, a fake GPU node and KubeRay."""
    with running_nodes(kube_server.cluster, pod_cidr=POD_CIDR, kuberay=True) as nodes:
        yield nodes


@pytest.fixture
def admin(kube_server: KubeServer) -> httpx.Client:
    return kube_server.admin


@pytest.fixture(scope="session")
def server(kube_server: KubeServer) -> RunningServer:
    """The kube-backed server, for tests imported from tests/api and tests/auth."""
    return kube_server.server
