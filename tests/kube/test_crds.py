"""The generated CRDs on a real kube-apiserver: accepted, established, and they store
one object of every LLMOS kind without pruning a field the API would keep."""

from __future__ import annotations

from typing import Any

import pytest

from kubeplane import KubeCluster
from llmos.resources.registry import ALL_KINDS, KindInfo
from llmos.resources.validation import validate_object

# The smallest valid spec of each kind that has required fields.
SPECS: dict[str, dict[str, Any]] = {
    "RoleTemplateBinding": {"roleTemplate": "namespace-member", "user": "alice"},
    "Token": {"userName": "alice"},
    "ModelService": {"model": "bundled:smollm2", "resources": {"cpu": 1.5, "memory": "2Gi"}},
    "VolumeSnapshot": {"volumeName": "data"},
    "Event": {"involvedObject": {"kind": "ModelService", "name": "x"}, "reason": "Created"},
}


def sample(info: KindInfo) -> dict[str, Any]:
    """An object of the kind as the LLMOS API would store it: validated, defaults filled."""
    metadata: dict[str, Any] = {"name": f"sample-{info.singular}", "labels": {"app": "test"}}
    if info.namespaced:
        metadata["namespace"] = "default"
    body = {"metadata": metadata, "spec": SPECS.get(info.kind, {})}
    return validate_object(info, body)


def collection(info: KindInfo) -> str:
    where = "/namespaces/default" if info.namespaced else ""
    return f"/apis/{info.group}/{info.version}{where}/{info.kube_plural}"


@pytest.mark.slow
@pytest.mark.parametrize("info", ALL_KINDS, ids=lambda info: info.kind)
def test_each_kind_round_trips_through_the_api_server(
    kube_crds: KubeCluster, info: KindInfo
) -> None:
    obj = sample(info)
    with kube_crds.client() as client:
        created = client.post(collection(info), json=obj)
        assert created.status_code == 201, created.text
        got = client.get(f"{collection(info)}/{obj['metadata']['name']}").json()
        assert got["metadata"]["labels"] == {"app": "test"}
        assert got.get("spec", {}) == obj.get("spec", {})  # nothing pruned, nothing defaulted
        assert got["metadata"]["generation"] == 1
        if "status" in obj:
            got["status"] = {**obj["status"], "message": "seen", "observedGeneration": 1}
            status = client.put(f"{collection(info)}/{obj['metadata']['name']}/status", json=got)
            assert status.status_code == 200, status.text
            assert status.json()["status"]["message"] == "seen"
            assert status.json()["metadata"]["generation"] == 1  # status does not bump it


@pytest.mark.slow
def test_every_kind_is_discoverable_with_its_short_names(kube_crds: KubeCluster) -> None:
    with kube_crds.client() as client:
        for group in {info.group for info in ALL_KINDS}:
            served = client.get(f"/apis/{group}/v1").json()["resources"]
            by_name = {entry["name"]: entry for entry in served}
            for info in (k for k in ALL_KINDS if k.group == group):
                entry = by_name[info.kube_plural]
                assert entry["kind"] == info.kind
                assert entry["namespaced"] == info.namespaced
                assert set(entry.get("shortNames", [])) <= set(info.short_names)
                assert "llmos" in entry.get("categories", [])
                if f"{info.kube_plural}/status" not in by_name:
                    pytest.fail(f"{info.kind} has no status subresource")


@pytest.mark.slow
def test_schema_rejects_what_the_model_rejects(kube_crds: KubeCluster) -> None:
    """Kubernetes checks the schema too: a client that bypasses LLMOS still can't store junk."""
    bad = {
        "apiVersion": "ml.llmos.ai/v1",
        "kind": "ModelService",
        "metadata": {"name": "bad", "namespace": "default"},
        "spec": {"model": "x", "replicas": -1, "engine": "nope"},
    }
    with kube_crds.client() as client:
        response = client.post("/apis/ml.llmos.ai/v1/namespaces/default/modelservices", json=bad)
    assert response.status_code == 422, response.text
    causes = {cause["field"] for cause in response.json()["details"]["causes"]}
    assert {"spec.replicas", "spec.engine"} <= causes
