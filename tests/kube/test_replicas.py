"""Two ``llmos server --store kube`` replicas: both serve the API, only the Lease holder
reconciles, and when it stops the other takes over."""

from __future__ import annotations

import re
import time
from pathlib import Path

import httpx
import pytest

from factories import create_namespace
from kubenodes import wait_until
from kubeplane import KubeCluster, apply_crds, control_plane
from server import RunningServer, free_port

LEASE = "/apis/coordination.k8s.io/v1/namespaces/llmos-system/leases/llmos-controllers"


def holder(cluster: KubeCluster) -> str:
    with cluster.client() as client:
        response = client.get(LEASE)
    return str(response.json()["spec"].get("holderIdentity") or "") if response.is_success else ""


def reconciles(server: RunningServer, token: str) -> float:
    with server.client(token) as client:
        text = client.get("/metrics").text
    return sum(
        float(value)
        for value in re.findall(r"^llmos_controller_reconciles_total\{[^}]*\} (\S+)$", text, re.M)
    )


def namespace_gone(client: httpx.Client, name: str) -> bool:
    return client.get(f"/apis/management.llmos.ai/v1/namespaces/{name}").status_code == 404


@pytest.mark.slow
def test_only_the_lease_holder_reconciles_and_the_other_takes_over(tmp_path: Path) -> None:
    with control_plane(tmp_path / "plane") as cluster:
        with cluster.client() as client:
            apply_crds(client)
        args = ["--store", "kube", "--kubeconfig", str(cluster.kubeconfig), "--skip-preflight"]
        first = RunningServer(tmp_path / "a", free_port(), args).start(timeout=120)
        second: RunningServer | None = None
        try:
            token = first.setup_admin()
            wait_until(lambda: holder(cluster).endswith(f"/{first.pid}"), "a leader", 30)
            second = RunningServer(tmp_path / "b", free_port(), args).start(timeout=120)
            second_token = second.login("admin", "admin-password-123")
            with second.client(second_token) as via_second:
                create_namespace(via_second, "made-via-b")  # the API works on both replicas
                via_second.delete("/apis/management.llmos.ai/v1/namespaces/made-via-b")
                # The leader's namespace controller finishes the deletion.
                wait_until(lambda: namespace_gone(via_second, "made-via-b"), "deletion", 30)
            assert reconciles(first, token) > 0
            assert reconciles(second, second_token) == 0, "a follower reconciled"
            assert holder(cluster).endswith(f"/{first.pid}")

            stopped_at = time.monotonic()
            assert first.stop() == 0, first.log()  # releases the Lease on the way out
            wait_until(lambda: holder(cluster).endswith(f"/{second.pid}"), "a new leader", 30)
            assert time.monotonic() - stopped_at < 15, "took longer than a lease"
            with second.client(second_token) as via_second:
                create_namespace(via_second, "after-failover")
                via_second.delete("/apis/management.llmos.ai/v1/namespaces/after-failover")
                wait_until(lambda: namespace_gone(via_second, "after-failover"), "deletion", 30)
            assert reconciles(second, second_token) > 0
        finally:
            if second is not None:
                assert second.stop() == 0, second.log()
            if first.proc is not None and first.proc.poll() is None:
                first.stop()
