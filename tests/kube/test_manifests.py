"""The installer's manifests on the fixture cluster: everything applies and the server's
Deployment rolls out onto a (KWOK) node, reachable through its Service on 8443."""

from __future__ import annotations

from typing import Any

import pytest

from kubenodes import KubeNodes, wait_until
from kubeplane import apply
from llmos.install.manifests import ClusterOptions, manifests


@pytest.mark.slow
def test_the_manifests_apply_and_the_server_rolls_out(kube_nodes: KubeNodes) -> None:
    ns = "llmos-install-test"
    with kube_nodes.cluster.client() as client:
        for obj in manifests(ClusterOptions(namespace=ns)):
            apply(client, obj)

        def available() -> dict[str, Any] | None:
            deployment = client.get(f"/apis/apps/v1/namespaces/{ns}/deployments/llmos-server")
            status = deployment.json().get("status", {})
            return deployment.json() if status.get("availableReplicas") == 1 else None

        wait_until(available, "the llmos-server Deployment to be available", timeout=120)
        pods = client.get(
            f"/api/v1/namespaces/{ns}/pods",
            params={"labelSelector": "app.kubernetes.io/name=llmos-server"},
        ).json()["items"]
        assert [pod["spec"]["nodeName"] for pod in pods] == [kube_nodes.gpu_node]
        assert pods[0]["spec"]["serviceAccountName"] == "llmos-server"
        service = client.get(f"/api/v1/namespaces/{ns}/services/llmos-server").json()
        assert [p["port"] for p in service["spec"]["ports"]] == [8443]
        assert service["spec"]["clusterIP"]
        crds = client.get("/apis/apiextensions.k8s.io/v1/customresourcedefinitions").json()
        names = {crd["metadata"]["name"] for crd in crds["items"]}
        assert "modelservices.ml.llmos.ai" in names
