"""``llmos server --store kube``: the LLMOS API over LLMOS's CRDs in a real API server.

What LLMOS writes is a custom resource any Kubernetes client sees, and what a
Kubernetes client writes, LLMOS serves; the API keeps its semantics.
"""

from __future__ import annotations

import json

import pytest

from factories import create_ev, create_ms, create_namespace, ev_path, modelservice, ms_path
from kubenodes import wait_until

from .conftest import KubeServer


@pytest.mark.slow
def test_objects_made_through_llmos_are_custom_resources(kube_server: KubeServer) -> None:
    create_namespace(kube_server.admin, "team-a")
    made = create_ms(kube_server.admin, "team-a", "m1")
    seen = kube_server.kube.get(ms_path("team-a", "m1"))
    assert seen.status_code == 200, seen.text
    assert seen.json()["spec"] == made["spec"]
    assert seen.json()["metadata"]["uid"] == made["metadata"]["uid"]
    everywhere = kube_server.kube.get("/apis/ml.llmos.ai/v1/modelservices").json()  # kubectl -A
    assert ("team-a", "m1") in {
        (i["metadata"]["namespace"], i["metadata"]["name"]) for i in everywhere["items"]
    }
    namespace = kube_server.kube.get("/apis/management.llmos.ai/v1/llmosnamespaces/team-a")
    assert namespace.status_code == 200, namespace.text


@pytest.mark.slow
def test_what_kubernetes_clients_write_llmos_serves(kube_server: KubeServer) -> None:
    create_namespace(kube_server.admin, "team-b")
    body = modelservice("from-kubectl")
    body["metadata"]["namespace"] = "team-b"
    made = kube_server.kube.post(ms_path("team-b"), json=body)
    assert made.status_code == 201, made.text
    served = kube_server.admin.get(ms_path("team-b", "from-kubectl"))
    assert served.status_code == 200, served.text
    assert "managedFields" not in served.json()["metadata"]


@pytest.mark.slow
def test_an_llmos_namespace_is_a_kubernetes_namespace(kube_server: KubeServer) -> None:
    create_namespace(kube_server.admin, "team-d")
    core = kube_server.kube.get("/api/v1/namespaces/team-d")
    assert core.status_code == 200, core.text
    assert core.json()["metadata"]["labels"]["app.kubernetes.io/managed-by"] == "llmos"
    gone = kube_server.admin.delete("/apis/management.llmos.ai/v1/namespaces/team-d")
    assert gone.is_success, gone.text

    def deleting() -> bool:
        response = kube_server.kube.get("/api/v1/namespaces/team-d")
        return response.status_code == 404 or bool(
            response.json()["metadata"].get("deletionTimestamp")
        )

    wait_until(deleting, "the Kubernetes namespace team-d to be deleted", timeout=30)


@pytest.mark.slow
def test_the_api_keeps_conflicts_generation_and_status_on_kube(kube_server: KubeServer) -> None:
    admin = kube_server.admin
    create_namespace(admin, "team-c")
    first = create_ev(admin, "team-c", "g")  # Events: no controller writes to them
    assert first["metadata"]["generation"] == 1
    first["metadata"]["labels"] = {"tier": "x"}
    relabelled = admin.put(ev_path("team-c", "g"), json=first)
    assert relabelled.status_code == 200, relabelled.text
    assert relabelled.json()["metadata"]["generation"] == 1
    stale = admin.put(ev_path("team-c", "g"), json=first)  # first's resourceVersion is old now
    assert stale.status_code == 409, stale.text
    assert stale.json()["reason"] == "Conflict"
    current = relabelled.json()
    current["spec"]["count"] = 2
    respecced = admin.put(ev_path("team-c", "g"), json=current)
    assert respecced.json()["metadata"]["generation"] == 2
    current = respecced.json()
    current["status"] = {"message": "seen"}
    status = admin.put(ev_path("team-c", "g") + "/status", json=current)
    assert status.status_code == 200, status.text
    assert status.json()["status"]["message"] == "seen"
    assert status.json()["metadata"]["generation"] == 2


@pytest.mark.slow
def test_the_admin_password_hash_is_a_secret_not_part_of_the_user(
    kube_server: KubeServer,
) -> None:
    user = kube_server.kube.get("/apis/management.llmos.ai/v1/users/admin")
    assert user.status_code == 200, user.text
    assert "password" not in str(user.json()).lower().replace("mustchangepassword", "")
    secret = kube_server.kube.get("/api/v1/namespaces/llmos-system/secrets/llmos.user.admin")
    assert secret.status_code == 200, secret.text
    assert secret.json()["metadata"]["ownerReferences"][0]["uid"] == user.json()["metadata"]["uid"]


@pytest.mark.slow
def test_the_server_runs_with_llmos_role_alone(kube_server: KubeServer) -> None:
    """The server's Kubernetes identity is the plain user bound to llmos-server: not admin."""
    headers = {"Authorization": f"Bearer {kube_server.cluster.plain_token}"}
    with kube_server.cluster.client() as client:
        # It reads pods (the Kubernetes runtime mirrors them) but never writes them.
        pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"}, "spec": {}}
        made = client.post("/api/v1/namespaces/default/pods", json=pod, headers=headers)
        assert made.status_code == 403, made.text
        configmaps = client.get("/api/v1/configmaps", headers=headers)
        assert configmaps.status_code == 403, configmaps.text
        mine = client.get("/apis/ml.llmos.ai/v1/modelservices", headers=headers)
        assert mine.status_code == 200, mine.text


@pytest.mark.slow
def test_a_watch_from_a_forgotten_revision_ends_with_a_410_error_event(
    kube_server: KubeServer,
) -> None:
    """Kubernetes answers such a watch with 200 and an ERROR event; LLMOS passes it on."""
    response = kube_server.admin.get(
        "/apis/node.llmos.ai/v1/namespaces/default/events",
        params={"watch": "true", "resourceVersion": "1", "timeoutSeconds": "10"},
    )
    assert response.status_code == 200, response.text
    lines = [line for line in response.text.splitlines() if line.strip()]
    event = json.loads(lines[0])
    assert event["type"] == "ERROR"
    assert event["object"]["code"] == 410
    assert event["object"]["reason"] == "Gone"
