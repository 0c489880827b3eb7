"""The Kubernetes runtime: LLMOS workloads as StatefulSets, Services and PVCs on a real API server.

``llmos server --store kube`` runs the Kubernetes runtime by default. The control
plane has the controller-manager (StatefulSets, garbage collection, PV binding),
the scheduler and kwok, which plays a node with 8 ``nvidia.com/gpu`` and runs
pods by setting their status (no containers run). Its pods get loopback IPs, so
the chat test stands a real llama.cpp server in for the engine container at the
pod's address, and the gateway routes to it as it would to the pod.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, cast

import httpx
import openai
import pytest

from factories import ML, create_namespace, create_secret, ms_path
from kubenodes import KubeNodes, wait_until
from kubeplane import KubeCluster
from llmos._lib.errors import LLMOSError, Reason
from llmos.auth.builtin import SETTINGS
from llmos.engines.base import EngineContext
from llmos.engines.llama_cpp import LlamaCppEngine
from llmos.engines.sources import bundled
from llmos.runtime.kube.render import KubeSettings
from llmos.runtime.kube.runtime import KubeAPI, KubeRuntime
from llmos.store.kube.client import KubeClient, KubeConnection

from .conftest import KubeServer
from .standin import stand_in

pytestmark = pytest.mark.slow


def _found(kube: httpx.Client, path: str) -> dict[str, Any] | None:
    response = kube.get(path)
    return response.json() if response.status_code == 200 else None


def _sts(kube: httpx.Client, namespace: str, name: str) -> dict[str, Any] | None:
    return _found(kube, f"/apis/apps/v1/namespaces/{namespace}/statefulsets/{name}")


def _status(admin: httpx.Client, path: str) -> dict[str, Any]:
    response = admin.get(path)
    assert response.status_code == 200, response.text
    result: dict[str, Any] = response.json().get("status") or {}
    return result


def _status_when(admin: httpx.Client, path: str, test: Any, what: str) -> dict[str, Any]:
    """The object's status once ``test(status)`` holds."""

    def check() -> dict[str, Any] | None:
        status = _status(admin, path)
        return status if test(status) else None

    result: dict[str, Any] = wait_until(check, what)
    return result


def _serving_children_gone(kube: httpx.Client, namespace: str, name: str, what: str) -> None:
    """Wait until a ModelService's StatefulSet and Service are gone."""
    wait_until(
        lambda: (
            _sts(kube, namespace, f"ms-{name}") is None
            and kube.get(f"/api/v1/namespaces/{namespace}/services/ms-{name}").status_code == 404
        ),
        what,
    )


def _merge(admin: httpx.Client, path: str, patch: dict[str, Any]) -> None:
    """A JSON merge patch: no resourceVersion, so no conflict with the controller's writes."""
    headers = {"Content-Type": "application/merge-patch+json"}
    response = admin.patch(path, json=patch, headers=headers)
    assert response.status_code == 200, response.text


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
    url = f"http://{address}:8000"
    with stand_in("engine", argv, log, f"{url}/v1/models"):
        yield url


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
    # Only the LLMOS server (the gateway) may reach the engine's pods.
    # (Applied after the StatefulSet: waited for, not read at once.)
    policy_path = "/apis/networking.k8s.io/v1/namespaces/serve-k/networkpolicies/ms-chat"
    policy = wait_until(lambda: _found(kube, policy_path), "the NetworkPolicy")
    assert policy["spec"]["podSelector"]["matchLabels"]["llmos.ai/name"] == "chat"
    (rule,) = policy["spec"]["ingress"]
    assert rule["from"] == [
        {
            "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "llmos-system"}},
            "podSelector": {"matchLabels": {"app.kubernetes.io/name": "llmos-server"}},
        }
    ]
    service = kube.get("/api/v1/namespaces/serve-k/services/ms-chat").json()
    assert service["spec"]["clusterIP"] == "None"
    assert service["spec"]["ports"][0]["port"] == 8000

    path = ms_path("serve-k", "chat")

    status = _status_when(
        admin, path, lambda s: s.get("phase") == "Ready", "the ModelService to be Ready"
    )
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

    status = _status_when(
        admin,
        ms_path("gpu-k", "huge"),
        lambda s: s.get("phase") == "Pending",
        "the 16-GPU ModelService to be Pending",
    )
    assert "Insufficient nvidia.com/gpu" in status["message"], status
    scheduled = {c["type"]: c for c in status["conditions"]}["Scheduled"]
    assert scheduled["status"] == "False" and scheduled["reason"] == "FailedScheduling"


def test_a_model_the_nodes_cannot_fetch_fails_before_anything_is_made(
    kube_server: KubeServer, kube_server_nodes: KubeNodes
) -> None:
    admin, kube = kube_server.admin, kube_server.kube
    create_namespace(admin, "local-k")
    _deploy(admin, "local-k", "mine", model="/home/me/model.gguf", modelRegistry="local")
    status = _status_when(
        admin,
        ms_path("local-k", "mine"),
        lambda s: s.get("phase") == "Failed",
        "the ModelService to fail",
    )
    assert "inside the nodes' model cache /var/lib/llmos/models" in status["message"]
    available = {c["type"]: c for c in status["conditions"]}["ModelAvailable"]
    assert (available["status"], available["reason"]) == ("False", "ModelUnavailable")
    assert _sts(kube, "local-k", "ms-mine") is None
    assert "ModelUnavailable" in _events(admin, "local-k", "mine")


def test_scaling_and_deleting_a_modelservice_reach_its_children(
    kube_server: KubeServer, kube_server_nodes: KubeNodes
) -> None:
    admin, kube = kube_server.admin, kube_server.kube
    create_namespace(admin, "scale-k")
    _deploy(admin, "scale-k", "m", replicas=1)
    path = ms_path("scale-k", "m")
    wait_until(lambda: _status(admin, path).get("phase") == "Ready", "one ready replica")

    _merge(admin, path, {"spec": {"replicas": 2}})

    status = _status_when(admin, path, lambda s: s.get("readyReplicas") == 2, "two ready replicas")
    assert len(set(status["endpoints"])) == 2

    assert admin.delete(path).is_success
    _serving_children_gone(
        kube, "scale-k", "m", "the StatefulSet and Service to go with the ModelService"
    )


def _preferred(sts: dict[str, Any] | None) -> list[str] | None:
    """The nodes a StatefulSet's pods prefer by name; None without a node affinity."""
    affinity = ((sts or {})["spec"]["template"]["spec"].get("affinity") or {}).get("nodeAffinity")
    if affinity is None:
        return None
    terms = affinity["preferredDuringSchedulingIgnoredDuringExecution"]
    return [v for t in terms for f in t["preference"]["matchFields"] for v in f["values"]]


def test_a_node_that_served_a_model_is_preferred_without_rolling_running_pods(
    kube_server: KubeServer, kube_server_nodes: KubeNodes
) -> None:
    admin, kube = kube_server.admin, kube_server.kube
    node = kube_server_nodes.gpu_node
    create_namespace(admin, "cache-k")
    # A model of its own, so no other test has noted it yet (kwok fetches nothing).
    model = "example/cache-preference-test"
    ref = f"huggingface:{model}"
    _deploy(admin, "cache-k", "first", model=model)
    first = ms_path("cache-k", "first")
    _status_when(admin, first, lambda s: s.get("phase") == "Ready", "the first one Ready")

    def noted() -> list[str] | None:
        cm = _found(kube, "/api/v1/namespaces/llmos-system/configmaps/llmos-model-cache")
        entries = json.loads(((cm or {}).get("data") or {}).get("models.json") or "[]")
        return next((e["nodes"] for e in entries if e["model"] == ref), None)

    # Written by the server as the plain user holding LLMOS's ClusterRole.
    assert wait_until(noted, "the node noted as holding the model") == [node]
    sts = _sts(kube, "cache-k", "ms-first")
    assert _preferred(sts) is None, "made when no node was known"
    pod0 = kube.get("/api/v1/namespaces/cache-k/pods/ms-first-0").json()["metadata"]["uid"]

    # Scaling up changes no pod template: the running pod is not replaced.
    _merge(admin, first, {"spec": {"replicas": 2}})
    _status_when(admin, first, lambda s: s.get("readyReplicas") == 2, "two ready replicas")
    assert _preferred(_sts(kube, "cache-k", "ms-first")) is None
    assert kube.get("/api/v1/namespaces/cache-k/pods/ms-first-0").json()["metadata"]["uid"] == pod0

    # Another ModelService of the same model prefers the node from the start, and the
    # API server and the scheduler take that preference.
    _deploy(admin, "cache-k", "second", model=model)
    second = wait_until(lambda: _sts(kube, "cache-k", "ms-second"), "the second StatefulSet")
    assert _preferred(second) == [node]
    _status_when(
        admin, ms_path("cache-k", "second"), lambda s: s.get("phase") == "Ready", "second Ready"
    )

    # Scaled to 0 there is nothing to roll: the first one takes the preference then.
    _merge(admin, first, {"spec": {"replicas": 0}})
    wait_until(
        lambda: _preferred(_sts(kube, "cache-k", "ms-first")) == [node],
        "the first StatefulSet, with no pods left, to prefer the node",
    )


def test_children_a_modelservice_no_longer_asks_for_are_removed(
    kube_server: KubeServer, kube_server_nodes: KubeNodes
) -> None:
    admin, kube = kube_server.admin, kube_server.kube
    create_namespace(admin, "prune-k")
    create_secret(admin, "prune-k", "hf", token="hf_not_a_real_token_0123456789")
    _deploy(admin, "prune-k", "m", hfTokenSecret="hf")
    path = ms_path("prune-k", "m")
    token_secret = "/api/v1/namespaces/prune-k/secrets/ms-m-hf-token"
    wait_until(lambda: kube.get(token_secret).status_code == 200, "the token's Secret")
    _status_when(admin, path, lambda s: s.get("phase") == "Ready", "the ModelService Ready")

    _merge(admin, path, {"spec": {"hfTokenSecret": None}})
    wait_until(lambda: kube.get(token_secret).status_code == 404, "the token's Secret to go")

    # Routed to a server elsewhere: nothing of it runs in the cluster any more.
    _merge(admin, path, {"spec": {"endpoint": "http://127.0.0.1:9/"}})
    _serving_children_gone(
        kube, "prune-k", "m", "the StatefulSet and Service to go once the ModelService is external"
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

    status = _status_when(
        admin, path, lambda s: s.get("phase") == "Ready", "the Volume to be Ready"
    )
    assert status["capacity"] == "2Gi"
    claim = kube.get("/api/v1/namespaces/vol-k/persistentvolumeclaims/vol-data").json()
    assert claim["spec"]["resources"]["requests"]["storage"] == "1Gi"
    assert claim["spec"]["accessModes"] == ["ReadWriteOnce"]


def test_snapshots_say_they_are_not_available_in_cluster_mode(
    kube_server: KubeServer, kube_server_nodes: KubeNodes
) -> None:
    admin = kube_server.admin
    create_namespace(admin, "snap-k")
    volume = {"apiVersion": "ml.llmos.ai/v1", "kind": "Volume", "metadata": {"name": "v"}}
    assert admin.post(f"{ML}/namespaces/snap-k/volumes", json=volume).status_code == 201
    snapshot = {
        "apiVersion": "ml.llmos.ai/v1",
        "kind": "VolumeSnapshot",
        "metadata": {"name": "s"},
        "spec": {"volumeName": "v"},
    }
    made = admin.post(f"{ML}/namespaces/snap-k/volumesnapshots", json=snapshot)
    assert made.status_code == 201, made.text
    status = _status_when(
        admin,
        f"{ML}/namespaces/snap-k/volumesnapshots/s",
        lambda s: s.get("phase") == "Failed",
        "the VolumeSnapshot to fail",
    )
    assert "not available in cluster mode" in status["message"]
    # Nothing can be restored from it: the API refuses, naming it.
    restored = {**volume, "metadata": {"name": "r"}, "spec": {"fromSnapshot": "s"}}
    refused = admin.post(f"{ML}/namespaces/snap-k/volumes", json=restored)
    assert refused.status_code == 422 and "'s'" in refused.text, refused.text


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
    # Its home is a claim of its own (a claim template could never change), owned by it.
    assert "volumeClaimTemplates" not in sts["spec"]
    assert sts["spec"]["podManagementPolicy"] == "Parallel"
    pod = sts["spec"]["template"]["spec"]
    volumes = {v["name"]: v for v in pod["volumes"]}
    assert volumes["home"]["persistentVolumeClaim"]["claimName"] == "nb-lab-home"
    assert pod["securityContext"]["fsGroup"] == 100
    claim = kube.get("/api/v1/namespaces/nb-k/persistentvolumeclaims/nb-lab-home").json()
    assert claim["metadata"]["ownerReferences"][0]["kind"] == "Notebook"
    token = kube.get("/api/v1/namespaces/nb-k/secrets/nb-lab-token")
    assert token.status_code == 200 and token.json()["data"]["token"]
    # Without a provisioner its home claim stays unbound, and the notebook says so.
    path = f"{ML}/namespaces/nb-k/notebooks/lab"

    status = _status_when(
        admin,
        path,
        lambda s: s.get("phase") == "Pending",
        "the notebook to be Pending on its unbound claim",
    )
    assert "PersistentVolumeClaim" in status["message"], status
    # Its log is its pod's, which no node runs: the error names the pod and says so.
    logs = admin.get(f"{path}/logs")
    assert logs.status_code == 503, logs.text
    assert logs.json()["message"] == (
        "the log of pod nb-k/nb-lab-0 cannot be read yet: no node runs it yet (it is "
        "Pending), so Kubernetes has no log of it"
    )

    _merge(admin, path, {"spec": {"stopped": True}})
    wait_until(
        lambda: (_sts(kube, "nb-k", "nb-lab") or {}).get("spec", {}).get("replicas") == 0,
        "the stopped notebook's StatefulSet to scale to 0",
    )
    wait_until(lambda: _status(admin, path).get("phase") == "Stopped", "the notebook Stopped")


# -- MLClusters: KubeRay RayClusters ---------------------------------------------------------


def _mlcluster(admin: httpx.Client, namespace: str, name: str, **spec: Any) -> dict[str, Any]:
    body = {
        "apiVersion": "ml.llmos.ai/v1",
        "kind": "MLCluster",
        "metadata": {"name": name},
        "spec": spec,
    }
    response = admin.post(f"{ML}/namespaces/{namespace}/mlclusters", json=body)
    assert response.status_code == 201, response.text
    result: dict[str, Any] = response.json()
    return result


def _raycluster(kube: httpx.Client, namespace: str, name: str) -> dict[str, Any] | None:
    response = kube.get(f"/apis/ray.io/v1/namespaces/{namespace}/rayclusters/{name}")
    return response.json() if response.status_code == 200 else None


def _ray_pods(kube: httpx.Client, namespace: str, cluster: str) -> list[dict[str, Any]]:
    pods = kube.get(
        f"/api/v1/namespaces/{namespace}/pods",
        params={"labelSelector": f"ray.io/cluster={cluster}"},
    ).json()["items"]
    return [p for p in pods if not p["metadata"].get("deletionTimestamp")]


def _groups(status: dict[str, Any]) -> dict[str, tuple[int, int]]:
    return {
        g["name"]: (g["desiredReplicas"], g["readyReplicas"])
        for g in status.get("workerGroups") or []
    }


def test_an_mlcluster_is_a_raycluster_that_kuberay_runs_and_its_status_mirrors_it(
    kube_server: KubeServer, kube_server_nodes: KubeNodes
) -> None:
    admin, kube = kube_server.admin, kube_server.kube
    create_namespace(admin, "ray-k")
    made = _mlcluster(
        admin,
        "ray-k",
        "rc",
        head={"resources": {"cpu": "1", "memory": "2Gi"}},
        workerGroups=[{"name": "cpu", "replicas": 2, "resources": {"cpu": "500m"}}],
    )
    rc = wait_until(lambda: _raycluster(kube, "ray-k", "ray-rc"), "the RayCluster")
    owner = rc["metadata"]["ownerReferences"][0]
    assert (owner["kind"], owner["uid"], owner["controller"]) == (
        "MLCluster",
        made["metadata"]["uid"],
        True,
    )
    head = rc["spec"]["headGroupSpec"]
    assert head["template"]["spec"]["containers"][0]["name"] == "ray-head"
    assert head["rayStartParams"] == {"dashboard-host": "0.0.0.0", "num-cpus": "1"}
    (group,) = rc["spec"]["workerGroupSpecs"]
    assert (group["groupName"], group["replicas"], group["rayStartParams"]) == (
        "cpu",
        2,
        {"num-cpus": "1"},  # Ray counts whole CPUs: at least one
    )

    path = f"{ML}/namespaces/ray-k/mlclusters/rc"
    status = _status_when(admin, path, lambda s: s.get("phase") == "Ready", "the MLCluster Ready")
    assert status["message"] == "head and 2/2 workers ready", status
    assert _groups(status) == {"cpu": (2, 2)}
    nodes = {n["name"]: n for n in status["nodes"]}
    assert set(nodes) == {"head", "cpu-0", "cpu-1"}, nodes
    assert {n["phase"] for n in nodes.values()} == {"Ready"}
    assert all(n["ip"].startswith("127.0.100.") for n in nodes.values()), nodes
    assert status["dashboardUrl"] == "/mlclusters/ray-k/rc/dashboard/"
    assert status["rayVersion"] == "2.60.0"
    ready = {c["type"]: c for c in status["conditions"]}["Ready"]
    assert ready["status"] == "True"

    # KubeRay made a head and two workers (kwok runs them) and the head's Service.
    pods = _ray_pods(kube, "ray-k", "ray-rc")
    types = sorted(p["metadata"]["labels"]["ray.io/node-type"] for p in pods)
    assert types == ["head", "worker", "worker"]
    for pod in pods:
        assert pod["spec"]["nodeName"] == kube_server_nodes.gpu_node
        assert pod["status"]["phase"] == "Running"
        assert pod["metadata"]["labels"]["llmos.ai/kind"] == "MLCluster"
    (head_pod,) = [p for p in pods if p["metadata"]["labels"]["ray.io/node-type"] == "head"]
    assert nodes["head"]["ip"] == head_pod["status"]["podIP"]
    rc = _raycluster(kube, "ray-k", "ray-rc")
    assert rc is not None
    assert rc["status"]["state"] == "ready"
    assert rc["status"]["head"]["podIP"] == head_pod["status"]["podIP"]
    assert rc["status"]["readyWorkerReplicas"] == rc["status"]["desiredWorkerReplicas"] == 2
    # KubeRay 1.5 makes the head's Service headless: its address is the head pod's.
    service = kube.get("/api/v1/namespaces/ray-k/services/ray-rc-head-svc").json()
    assert service["spec"]["clusterIP"] == "None"
    assert rc["status"]["head"]["serviceIP"] == head_pod["status"]["podIP"]
    assert {p["name"]: p["port"] for p in service["spec"]["ports"]}["dashboard"] == 8265

    reasons = _events(admin, "ray-k", "rc")
    assert {"Scheduled", "Started", "Ready"} <= set(reasons), reasons


def test_scaling_a_worker_group_changes_the_raycluster_and_deleting_cascades(
    kube_server: KubeServer, kube_server_nodes: KubeNodes
) -> None:
    admin, kube = kube_server.admin, kube_server.kube
    create_namespace(admin, "ray-scale-k")
    _mlcluster(admin, "ray-scale-k", "sc", workerGroups=[{"name": "w", "replicas": 1}])
    path = f"{ML}/namespaces/ray-scale-k/mlclusters/sc"
    _status_when(admin, path, lambda s: s.get("phase") == "Ready", "the MLCluster Ready")

    current = admin.get(path).json()
    current["spec"]["workerGroups"][0]["replicas"] = 3
    assert admin.put(path, json=current).status_code == 200
    wait_until(
        lambda: (
            (_raycluster(kube, "ray-scale-k", "ray-sc") or {})
            .get("spec", {})
            .get("workerGroupSpecs", [{}])[0]
            .get("replicas")
            == 3
        ),
        "the RayCluster's worker group to ask for 3",
    )
    status = _status_when(
        admin,
        path,
        lambda s: s.get("phase") == "Ready" and _groups(s) == {"w": (3, 3)},
        "three ready workers",
    )
    assert len(status["nodes"]) == 4
    assert len(_ray_pods(kube, "ray-scale-k", "ray-sc")) == 4

    current = admin.get(path).json()
    current["spec"]["workerGroups"][0]["replicas"] = 1
    assert admin.put(path, json=current).status_code == 200
    _status_when(
        admin,
        path,
        lambda s: s.get("phase") == "Ready" and _groups(s) == {"w": (1, 1)},
        "one worker again",
    )
    wait_until(
        lambda: len(_ray_pods(kube, "ray-scale-k", "ray-sc")) == 2, "KubeRay to remove 2 workers"
    )

    assert admin.delete(path).is_success
    wait_until(
        lambda: (
            _raycluster(kube, "ray-scale-k", "ray-sc") is None
            and not _ray_pods(kube, "ray-scale-k", "ray-sc")
            and kube.get("/api/v1/namespaces/ray-scale-k/services/ray-sc-head-svc").status_code
            == 404
        ),
        "the RayCluster, its pods and its Service to go with the MLCluster",
    )


def test_an_autoscaled_mlcluster_gives_the_autoscaler_rays_token(
    kube_server: KubeServer, kube_server_nodes: KubeNodes
) -> None:
    admin, kube = kube_server.admin, kube_server.kube
    create_namespace(admin, "ray-auto-k")
    groups = [{"name": "w", "replicas": 1, "minReplicas": 0, "maxReplicas": 4}]
    _mlcluster(admin, "ray-auto-k", "au", workerGroups=groups, idleTimeoutSeconds=60)
    rc = wait_until(lambda: _raycluster(kube, "ray-auto-k", "ray-au"), "the RayCluster")
    assert rc["spec"]["enableInTreeAutoscaling"] is True
    env = {e["name"] for e in rc["spec"]["autoscalerOptions"]["env"]}
    assert {"RAY_AUTH_MODE", "RAY_AUTH_TOKEN"} <= env, "the autoscaler must reach Ray too"


def test_gpu_worker_groups_request_nvidia_gpus_and_one_no_node_fits_stays_pending(
    kube_server: KubeServer, kube_server_nodes: KubeNodes
) -> None:
    admin, kube = kube_server.admin, kube_server.kube
    create_namespace(admin, "ray-gpu-k")
    _mlcluster(
        admin,
        "ray-gpu-k",
        "g",
        workerGroups=[{"name": "gpu", "replicas": 1, "resources": {"gpu": 2}}],
    )
    _mlcluster(admin, "ray-gpu-k", "huge", workerGroups=[{"name": "big", "resources": {"gpu": 16}}])
    rc = wait_until(lambda: _raycluster(kube, "ray-gpu-k", "ray-g"), "the RayCluster")
    (group,) = rc["spec"]["workerGroupSpecs"]
    assert group["rayStartParams"] == {"num-gpus": "2"}
    limits = group["template"]["spec"]["containers"][0]["resources"]["limits"]
    assert limits["nvidia.com/gpu"] == "2"
    assert "nvidia.com/gpu" not in str(rc["spec"]["headGroupSpec"]["template"])

    path = f"{ML}/namespaces/ray-gpu-k/mlclusters/g"
    _status_when(admin, path, lambda s: s.get("phase") == "Ready", "the GPU MLCluster Ready")
    (worker,) = [
        p
        for p in _ray_pods(kube, "ray-gpu-k", "ray-g")
        if p["metadata"]["labels"]["ray.io/node-type"] == "worker"
    ]
    assert worker["spec"]["containers"][0]["resources"]["limits"]["nvidia.com/gpu"] == "2"
    assert worker["spec"]["nodeName"] == kube_server_nodes.gpu_node
    assert (_raycluster(kube, "ray-gpu-k", "ray-g") or {})["status"]["desiredGPU"] == "2"

    huge = _status_when(
        admin,
        f"{ML}/namespaces/ray-gpu-k/mlclusters/huge",
        lambda s: s.get("phase") == "Pending",
        "the 16-GPU MLCluster to be Pending",
    )
    assert "Insufficient nvidia.com/gpu" in huge["message"], huge
    assert {n["name"]: n["phase"] for n in huge["nodes"]}["big-0"] == "Pending"
    scheduled = {c["type"]: c for c in huge["conditions"]}["Scheduled"]
    assert scheduled["status"] == "False" and scheduled["reason"] == "FailedScheduling"
    # Give the node's GPUs back to the other tests.
    for name in ("g", "huge"):
        assert admin.delete(f"{ML}/namespaces/ray-gpu-k/mlclusters/{name}").is_success


def test_an_mlcluster_on_a_cluster_without_kuberay_says_what_is_missing(kube: KubeCluster) -> None:
    """The shared control plane has no ray.io API: applying a RayCluster names KubeRay."""
    cluster = {
        "apiVersion": "ml.llmos.ai/v1",
        "kind": "MLCluster",
        "metadata": {"name": "rc", "namespace": "default", "uid": "0000-rc"},
        "spec": {"workerGroups": [{"name": "cpu", "replicas": 1}]},
    }
    settings = KubeSettings.from_settings(lambda name: SETTINGS[name][0])

    async def apply() -> None:
        client = KubeClient(KubeConnection.from_kubeconfig(kube.kubeconfig))
        try:
            # apply only sends requests; the log and watch methods are not needed.
            await KubeRuntime(cast(KubeAPI, client), lambda: settings).apply(cluster)
        finally:
            await client.close()

    with pytest.raises(LLMOSError) as caught:
        asyncio.run(apply())
    assert caught.value.reason == Reason.SERVICE_UNAVAILABLE
    assert "KubeRay" in str(caught.value), caught.value
