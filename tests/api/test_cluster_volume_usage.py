"""Cluster mode's Volume usage: the bytes the kubelets of the nodes that mount its claim report.

kwok's nodes have no kubelet to ask (``tests/kubemock.py``), so the API server is
a stand-in here: the claim, the namespace's pods, and each node's stats summary
(``/api/v1/nodes/{node}/proxy/stats/summary``, the shape a kubelet answers).
Not exercised: a real kubelet's answer.
"""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import orjson

from kubemock import kube_status, runtime_on, workload

MiB = 1024 * 1024
CLAIM = {
    "metadata": {"name": "vol-data", "namespace": "team"},
    "spec": {"volumeName": "pv-1"},
    "status": {"phase": "Bound", "capacity": {"storage": "1Gi"}},
}


def pod(name: str, node: str, phase: str, claim: str | None) -> dict[str, Any]:
    volumes = [{"name": "data", "persistentVolumeClaim": {"claimName": claim}}] if claim else []
    return {
        "metadata": {"name": name, "namespace": "team"},
        "spec": {"nodeName": node, "volumes": volumes},
        "status": {"phase": phase},
    }


def summary(*volumes: tuple[str, int]) -> dict[str, Any]:
    """A kubelet's stats summary: one pod with these (claim, used bytes) volumes."""
    return {
        "node": {"nodeName": "n1"},
        "pods": [
            {
                "podRef": {"name": "nb-lab-0", "namespace": "team"},
                "volume": [
                    {
                        "name": f"v{i}",
                        "usedBytes": used,
                        "capacityBytes": 1024 * MiB,
                        "pvcRef": {"name": claim, "namespace": "team"},
                    }
                    for i, (claim, used) in enumerate(volumes)
                ]
                + [{"name": "shm", "usedBytes": 7}],  # not a claim
            }
        ],
    }


def api(pods: list[dict[str, Any]], answers: dict[str, httpx.Response], asked: list[str]) -> Any:
    def handler(request: httpx.Request) -> httpx.Response:
        path = request.url.path
        asked.append(path)
        if path == "/api/v1/namespaces/team/persistentvolumeclaims/vol-data":
            return httpx.Response(200, content=orjson.dumps(CLAIM))
        if path == "/api/v1/namespaces/team/pods":
            return httpx.Response(200, content=orjson.dumps({"items": pods}))
        return answers.get(path) or kube_status(404, f"{path} not found")

    return handler


def test_usage_comes_from_the_kubelet_of_each_node_with_a_running_pod_that_mounts_it() -> None:
    asked: list[str] = []
    pods = [
        pod("nb-lab-0", "n1", "Running", "vol-data"),
        pod("nb-old-0", "n2", "Pending", "vol-data"),  # not running: its kubelet is not asked
        pod("other-0", "n3", "Running", "vol-other"),  # mounts another claim
    ]
    answers = {
        "/api/v1/nodes/n1/proxy/stats/summary": httpx.Response(
            200, content=orjson.dumps(summary(("vol-data", 300 * MiB), ("vol-other", 5 * MiB)))
        )
    }

    async def main() -> list[Any]:
        runtime, client = runtime_on(api(pods, answers, asked))
        first = await runtime.observe(workload("Volume", "data"))
        again = await runtime.observe(workload("Volume", "data"))  # the node's summary is kept
        await client.close()
        return [first, again]

    first, again = asyncio.run(main())
    assert first.phase == "Ready" and first.extra["capacity"] == "1Gi"
    assert first.extra["usedBytes"] == again.extra["usedBytes"] == 300 * MiB
    nodes = [path for path in asked if path.startswith("/api/v1/nodes/")]
    assert nodes == ["/api/v1/nodes/n1/proxy/stats/summary"]


def test_no_usage_while_nothing_mounts_it_or_no_kubelet_answers() -> None:
    asked: list[str] = []
    pods = [pod("nb-lab-0", "kwok-node-0", "Running", "vol-data")]
    # What the API server says for a node without a kubelet (kwok's).
    answers = {
        "/api/v1/nodes/kwok-node-0/proxy/stats/summary": kube_status(
            500, "no preferred addresses found; known addresses: []"
        )
    }

    async def main() -> list[Any]:
        runtime, client = runtime_on(api(pods, answers, asked))
        silent = await runtime.observe(workload("Volume", "data"))
        pods.clear()
        unmounted = await runtime.observe(workload("Volume", "data"))
        await client.close()
        return [silent, unmounted]

    silent, unmounted = asyncio.run(main())
    assert silent.phase == unmounted.phase == "Ready"
    assert "usedBytes" not in silent.extra and "usedBytes" not in unmounted.extra
