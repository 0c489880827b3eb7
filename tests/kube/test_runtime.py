"""The Kubernetes runtime: LLMOS workloads as StatefulSets, Services and PVCs on a real API server.

``llmos server --store kube`` runs the Kubernetes runtime by default. The control
plane has the controller-manager (StatefulSets, garbage collection, PV binding),
the scheduler and kwok, which plays a node with 8 ``nvidia.com/gpu`` and runs
pods by setting their status (no containers run). Its pods get loopback IPs, so
the chat test stands a real llama.cpp server in for the engine container at the
pod's address, and the gateway routes to it as it would to the pod.
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest

from factories import ML, create_namespace, ms_path
from kubenodes import KubeNodes, wait_until
from llmos.engines.base import EngineContext
from llmos.engines.llama_cpp import LlamaCppEngine
from llmos.engines.sources import bundled

from .conftest import KubeServer

pytestmark = pytest.mark.slow


def _sts(kube: httpx.Client, namespace: str, name: str) -> dict[str, Any] | None:
    response = kube.get(f"/apis/apps/v1/namespaces/{namespace}/statefulsets/{name}")
    return response.json() if response.status_code == 200 else None


def _status(admin: httpx.Client, path: str) -> dict[str, Any]:
    response = admin.get(path)
    assert response.status_code == 200, response.text
    result: dict[str, Any] = response.json().get("status") or {}
    return result


def _deploy(admin: httpx.Client, namespace: str, name: str, **spec: Any) -> dict[str, Any]:
    body = {
        "apiVersion": "ml.llmos.ai/v1",
        "kind": "ModelService",
        "metadata": {"name": name},
        "spec": {"model": "bundled:smollm2", "engine": "llama-cpp", **spec},
    }
    response = admin.post(ms_path(namespace), json=body)
    assert response.status_code == 201, response.text
    result: dict[str, Any] = response.json()
    return result


def _events(admin: httpx.Client, namespace: str, name: str) -> list[str]:
    items = admin.get(f"/apis/node.llmos.ai/v1/namespaces/{namespace}/events").json()["items"]
    return [e["spec"]["reason"] for e in items if e["spec"]["involvedObject"]["name"] == name]


@contextmanager
def stand_in_engine(address: str, served: str, log: Path) -> Iterator[str]:
    """A real llama.cpp server at the pod's address, standing in for its container."""
    command = LlamaCppEngine().command(EngineContext(bundled("smollm2"), served))
    argv = [address if a == "127.0.0.1" else "8000" if a == "{port}" else a for a in command]
    with log.open("wb") as out:
        proc = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT)
    try:
        url = f"http://{address}:8000"

        def up() -> bool:
            if proc.poll() is not None:
                pytest.fail(f"the stand-in engine exited: {log.read_text()[-2000:]}")
            try:
                return httpx.get(f"{url}/v1/models", timeout=2).status_code == 200
            except httpx.HTTPError:
                return False

        wait_until(up, "the stand-in engine to answer", timeout=120)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def test_a_modelservice_is_a_statefulset_and_a_service_and_serves_through_the_gateway(
    kube_server: KubeServer, kube_server_nodes: KubeNodes, tmp_path: Path
) -> None:
    admin, kube = kube_server.admin, kube_server.kube
    create_namespace(admin, "serve-k")
    made = _deploy(
        admin, "serve-k", "chat", servedModelName="smol", env=[{"name": "A", "value": "1"}]
    )

    sts = wait_until(lambda: _sts(kube, "serve-k", "ms-chat"), "the StatefulSet")
    owner = sts["metadata"]["ownerReferences"][0]
    assert (owner["kind"], owner["uid"], owner["controller"]) == (
        "ModelService",
        made["metadata"]["uid"],
        True,
    )
    pod = sts["spec"]["template"]["spec"]
    assert sts["spec"]["replicas"] == 1 and sts["spec"]["serviceName"] == "ms-chat"
    (fetch,) = pod["initContainers"]
    assert fetch["command"][-2:] == ["--link", "/models/links/serve-k.chat"]
    assert "bundled:smollm2" in fetch["command"]
    (engine,) = pod["containers"]
    assert engine["image"] == "ghcr.io/ggml-org/llama.cpp:server"
    assert engine["command"][:3] == ["/app/llama-server", "--model", "/models/links/serve-k.chat"]
    assert "smol" in engine["command"]
    assert {"name": "A", "value": "1"} in engine["env"]
    for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
        assert engine[probe]["httpGet"]["path"] == "/health"
    volumes = {v["name"]: v for v in pod["volumes"]}
    assert volumes["shm"]["emptyDir"]["medium"] == "Memory"
    assert volumes["models"]["hostPath"]["path"] == "/var/lib/llmos/models"
    service = kube.get("/api/v1/namespaces/serve-k/services/ms-chat").json()
    assert service["spec"]["clusterIP"] == "None"
    assert service["spec"]["ports"][0]["port"] == 8000

    path = ms_path("serve-k", "chat")

    def ready() -> dict[str, Any] | None:
        status = _status(admin, path)
        return status if status.get("phase") == "Ready" else None

    status = wait_until(ready, "the ModelService to be Ready")
    assert status["readyReplicas"] == 1
    (endpoint,) = status["endpoints"]
    assert endpoint.startswith("http://127.0.100.") and endpoint.endswith(":8000")
    reasons = _events(admin, "serve-k", "chat")
    assert {"Scheduled", "Started", "Ready"} <= set(reasons), reasons

    address = endpoint.removeprefix("http://").rpartition(":")[0]
    with stand_in_engine(address, "smol", tmp_path / "engine.log"):
        client = openai.OpenAI(
            base_url=f"{kube_server.server.url}/v1",
            api_key=kube_server.server.admin_token,
            http_client=httpx.Client(verify=kube_server.server.ssl_context()),
        )
        models = [m.id for m in client.models.list().data]
        assert "smol" in models
        answer = client.chat.completions.create(
            model="smol", messages=[{"role": "user", "content": "Say hi"}], max_tokens=8
        )
        assert answer.choices[0].message.content


def test_gpus_are_requested_from_kubernetes_and_a_request_no_node_fits_stays_pending(
    kube_server: KubeServer, kube_server_nodes: KubeNodes
) -> None:
    admin, kube = kube_server.admin, kube_server.kube
    create_namespace(admin, "gpu-k")
    _deploy(admin, "gpu-k", "two", resources={"gpu": 2})
    _deploy(admin, "gpu-k", "huge", resources={"gpu": 16})

    sts = wait_until(lambda: _sts(kube, "gpu-k", "ms-two"), "the StatefulSet")
    limits = sts["spec"]["template"]["spec"]["containers"][0]["resources"]["limits"]
    assert limits["nvidia.com/gpu"] == "2"
    wait_until(
        lambda: _status(admin, ms_path("gpu-k", "two")).get("phase") == "Ready",
        "the 2-GPU ModelService to be Ready on the 8-GPU node",
    )

    def pending() -> dict[str, Any] | None:
        status = _status(admin, ms_path("gpu-k", "huge"))
        return status if status.get("phase") == "Pending" else None

    status = wait_until(pending, "the 16-GPU ModelService to be Pending")
    assert "Insufficient nvidia.com/gpu" in status["message"], status
    scheduled = {c["type"]: c for c in status["conditions"]}["Scheduled"]
    assert scheduled["status"] == "False" and scheduled["reason"] == "FailedScheduling"


def test_scaling_and_deleting_a_modelservice_reach_its_children(
    kube_server: KubeServer, kube_server_nodes: KubeNodes
) -> None:
    admin, kube = kube_server.admin, kube_server.kube
    create_namespace(admin, "scale-k")
    _deploy(admin, "scale-k", "m", replicas=1)
    path = ms_path("scale-k", "m")
    wait_until(lambda: _status(admin, path).get("phase") == "Ready", "one ready replica")

    current = admin.get(path).json()
    current["spec"]["replicas"] = 2
    assert admin.put(path, json=current).status_code == 200

    def two_ready() -> dict[str, Any] | None:
        status = _status(admin, path)
        return status if status.get("readyReplicas") == 2 else None

    status = wait_until(two_ready, "two ready replicas")
    assert len(set(status["endpoints"])) == 2

    assert admin.delete(path).is_success
    wait_until(
        lambda: (
            _sts(kube, "scale-k", "ms-m") is None
            and kube.get("/api/v1/namespaces/scale-k/services/ms-m").status_code == 404
        ),
        "the StatefulSet and Service to go with the ModelService",
    )


def test_a_volume_is_a_pvc_and_is_ready_once_bound(
    kube_server: KubeServer, kube_server_nodes: KubeNodes
) -> None:
    admin, kube = kube_server.admin, kube_server.kube
    create_namespace(admin, "vol-k")
    # No provisioner runs here: a PersistentVolume made in advance, as an admin would.
    pv = {
        "apiVersion": "v1",
        "kind": "PersistentVolume",
        "metadata": {"name": "vol-k-data"},
        "spec": {
            "capacity": {"storage": "2Gi"},
            "accessModes": ["ReadWriteOnce"],
            "hostPath": {"path": "/var/lib/llmos-test/vol-k"},
            "storageClassName": "",
            "claimRef": {"namespace": "vol-k", "name": "vol-data"},
        },
    }
    assert kube.post("/api/v1/persistentvolumes", json=pv).status_code == 201
    body = {
        "apiVersion": "ml.llmos.ai/v1",
        "kind": "Volume",
        "metadata": {"name": "data"},
        "spec": {"capacity": "1Gi"},
    }
    assert admin.post(f"{ML}/namespaces/vol-k/volumes", json=body).status_code == 201
    path = f"{ML}/namespaces/vol-k/volumes/data"

    def ready() -> dict[str, Any] | None:
        status = _status(admin, path)
        return status if status.get("phase") == "Ready" else None

    status = wait_until(ready, "the Volume to be Ready")
    assert status["capacity"] == "2Gi"
    claim = kube.get("/api/v1/namespaces/vol-k/persistentvolumeclaims/vol-data").json()
    assert claim["spec"]["resources"]["requests"]["storage"] == "1Gi"
    assert claim["spec"]["accessModes"] == ["ReadWriteOnce"]


def test_a_notebook_is_a_statefulset_with_a_home_claim_and_a_secret_of_its_own(
    kube_server: KubeServer, kube_server_nodes: KubeNodes
) -> None:
    admin, kube = kube_server.admin, kube_server.kube
    create_namespace(admin, "nb-k")
    body = {
        "apiVersion": "ml.llmos.ai/v1",
        "kind": "Notebook",
        "metadata": {"name": "lab"},
        "spec": {"type": "jupyter", "resources": {"gpu": 1}},
    }
    assert admin.post(f"{ML}/namespaces/nb-k/notebooks", json=body).status_code == 201
    sts = wait_until(lambda: _sts(kube, "nb-k", "nb-lab"), "the notebook's StatefulSet")
    (container,) = sts["spec"]["template"]["spec"]["containers"]
    assert "--ServerApp.base_url=/notebooks/nb-k/lab/" in container["command"]
    assert container["resources"]["limits"]["nvidia.com/gpu"] == "1"
    (template,) = sts["spec"]["volumeClaimTemplates"]
    assert template["metadata"]["name"] == "home"
    token = kube.get("/api/v1/namespaces/nb-k/secrets/nb-lab-token")
    assert token.status_code == 200 and token.json()["data"]["token"]
    # Without a provisioner its home claim stays unbound, and the notebook says so.
    path = f"{ML}/namespaces/nb-k/notebooks/lab"

    def pending() -> dict[str, Any] | None:
        status = _status(admin, path)
        return status if status.get("phase") == "Pending" else None

    status = wait_until(pending, "the notebook to be Pending on its unbound claim")
    assert "PersistentVolumeClaim" in status["message"], status

    current = admin.get(path).json()
    current["spec"]["stopped"] = True
    assert admin.put(path, json=current).status_code == 200
    wait_until(
        lambda: (_sts(kube, "nb-k", "nb-lab") or {}).get("spec", {}).get("replicas") == 0,
        "the stopped notebook's StatefulSet to scale to 0",
    )
    wait_until(lambda: _status(admin, path).get("phase") == "Stopped", "the notebook Stopped")


def test_an_mlcluster_without_kuberay_says_what_is_missing(
    kube_server: KubeServer, kube_server_nodes: KubeNodes
) -> None:
    admin = kube_server.admin
    create_namespace(admin, "ray-k")
    body = {
        "apiVersion": "ml.llmos.ai/v1",
        "kind": "MLCluster",
        "metadata": {"name": "rc"},
        "spec": {"workerGroups": [{"name": "cpu", "replicas": 1}]},
    }
    assert admin.post(f"{ML}/namespaces/ray-k/mlclusters", json=body).status_code == 201

    def failed() -> dict[str, Any] | None:
        status = _status(admin, f"{ML}/namespaces/ray-k/mlclusters/rc")
        return status if status.get("phase") == "Failed" else None

    status = wait_until(failed, "the MLCluster to fail for want of KubeRay")
    assert "KubeRay" in status["message"], status
