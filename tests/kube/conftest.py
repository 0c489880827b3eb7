"""Fixtures of tests/kube: ``llmos server --store kube`` on the session's control plane.

One LLMOS server per session: its admin user (a custom resource) outlives any one
server, and only the first start has a bootstrap password. ``admin`` here is
that server's admin client, so API tests imported from tests/api run against it.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import httpx
import pytest

from kubeplane import KubeCluster
from server import RunningServer, free_port


@dataclass
class KubeServer:
    server: RunningServer
    admin: httpx.Client  # the LLMOS API as admin
    kube: httpx.Client  # the Kubernetes API as its admin


@pytest.fixture(scope="session")
def kube_server(
    kube_crds: KubeCluster, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[KubeServer]:
    data = tmp_path_factory.mktemp("kube-server") / "data"
    args = ["--store", "kube", "--kubeconfig", str(kube_crds.kubeconfig), "--skip-preflight"]
    running = RunningServer(data, free_port(), args).start(timeout=120)
    try:
        token = running.setup_admin()
        with running.client(token) as admin, kube_crds.client() as kube:
            yield KubeServer(running, admin, kube)
    finally:
        assert running.stop() == 0, running.log()


@pytest.fixture
def admin(kube_server: KubeServer) -> httpx.Client:
    return kube_server.admin
