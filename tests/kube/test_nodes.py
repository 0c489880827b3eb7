"""The fixture's scheduler, controllers and KWOK nodes: GPU pods land, or say why not."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import pytest

from kubenodes import GPUS_PER_NODE, KubeNodes, wait_until


def gpu_pod(name: str, gpus: int) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name},
        "spec": {
            "containers": [
                {
                    "name": "engine",
                    "image": "vllm/vllm-openai:latest",
                    "resources": {"limits": {"nvidia.com/gpu": str(gpus)}},
                }
            ],
        },
    }


def pod(client: httpx.Client, name: str) -> dict[str, Any]:
    response = client.get(f"/api/v1/namespaces/default/pods/{name}")
    response.raise_for_status()
    result: dict[str, Any] = response.json()
    return result


@pytest.mark.slow
def test_a_gpu_pod_is_scheduled_on_a_kwok_gpu_node_and_runs(kube_nodes: KubeNodes) -> None:
    name = f"gpu-{uuid.uuid4().hex[:6]}"
    with kube_nodes.cluster.client() as client:
        created = client.post("/api/v1/namespaces/default/pods", json=gpu_pod(name, 2))
        assert created.status_code == 201, created.text
        running = wait_until(
            lambda: (p := pod(client, name))["status"].get("phase") == "Running" and p,
            f"pod {name} to run",
        )
        assert running["spec"]["nodeName"] == kube_nodes.gpu_node
        client.delete(f"/api/v1/namespaces/default/pods/{name}").raise_for_status()


@pytest.mark.slow
def test_a_gpu_request_no_node_can_satisfy_stays_pending_with_the_reason(
    kube_nodes: KubeNodes,
) -> None:
    name = f"huge-{uuid.uuid4().hex[:6]}"
    with kube_nodes.cluster.client() as client:
        created = client.post(
            "/api/v1/namespaces/default/pods", json=gpu_pod(name, GPUS_PER_NODE + 1)
        )
        assert created.status_code == 201, created.text

        def unschedulable() -> dict[str, Any] | None:
            for condition in pod(client, name)["status"].get("conditions") or []:
                if condition["type"] == "PodScheduled" and condition["status"] == "False":
                    return dict(condition)
            return None

        condition = wait_until(unschedulable, f"pod {name} to be found unschedulable")
        assert condition["reason"] == "Unschedulable"
        assert "Insufficient nvidia.com/gpu" in condition["message"]
        assert pod(client, name)["status"]["phase"] == "Pending"
        client.delete(f"/api/v1/namespaces/default/pods/{name}").raise_for_status()
