"""What any client sees first: health, discovery, OpenAPI, this Node, auth on every route."""

from __future__ import annotations

import httpx
import yaml

from server import RunningServer

KINDS = {
    "management.llmos.ai": {
        "namespaces",
        "users",
        "globalroles",
        "roletemplates",
        "roletemplatebindings",
        "tokens",
        "settings",
        "secrets",
    },
    "ml.llmos.ai": {"modelservices", "notebooks", "mlclusters", "volumes", "volumesnapshots"},
    "node.llmos.ai": {"nodes", "gpudevices", "events"},
}


def test_health_needs_no_token(server: RunningServer) -> None:
    with server.client() as anonymous:
        assert anonymous.get("/healthz").text == "ok"
        assert anonymous.get("/readyz").text == "ok"
        assert anonymous.get("/v1-public/info").json()["version"]
        assert "BEGIN CERTIFICATE" in anonymous.get("/v1-public/cacerts").text


def test_every_other_route_needs_a_token(server: RunningServer) -> None:
    with server.client() as anonymous:
        for path in (
            "/apis",
            "/apis/ml.llmos.ai/v1",
            "/apis/ml.llmos.ai/v1/namespaces/default/modelservices",
            "/apis/node.llmos.ai/v1/nodes",
            "/v1-auth/me",
            "/v1-auth/apikeys",
        ):
            response = anonymous.get(path)
            assert response.status_code == 401, path


def test_plain_http_is_not_served(server: RunningServer) -> None:
    try:
        response = httpx.get(f"http://127.0.0.1:{server.port}/healthz", timeout=5)
    except httpx.HTTPError:
        return
    assert response.status_code >= 400


def test_discovery_lists_every_kind(admin: httpx.Client) -> None:
    groups = admin.get("/apis").json()["groups"]
    assert {g["name"] for g in groups} == set(KINDS)
    for group, plurals in KINDS.items():
        listing = admin.get(f"/apis/{group}/v1").json()
        names = {r["name"] for r in listing["resources"] if "/" not in r["name"]}
        assert names == plurals
        assert any(r["name"].endswith("/status") for r in listing["resources"])


def test_openapi_documents_kinds_and_auth_routes(server: RunningServer) -> None:
    with server.client() as anonymous:
        doc = anonymous.get("/openapi.json").json()
    paths = doc["paths"]
    assert "/v1-public/auth/login" in paths
    assert "/apis/ml.llmos.ai/v1/namespaces/{namespace}/modelservices/{name}/status" in paths
    assert "/apis/management.llmos.ai/v1/users" in paths
    schema = doc["components"]["schemas"]["ModelService"]
    assert "spec" in schema["properties"]
    assert doc["components"]["schemas"]["ModelServiceSpec"]["additionalProperties"] is False


def test_the_server_registers_its_node(admin: httpx.Client) -> None:
    nodes = admin.get("/apis/node.llmos.ai/v1/nodes").json()["items"]
    assert len(nodes) == 1
    status = nodes[0]["status"]
    assert set(status["capacity"]) >= {"cpu", "memory", "ephemeral-storage"}
    assert int(status["capacity"]["cpu"]) >= 1
    assert status["phase"] == "Ready"
    assert status["nodeInfo"]["mode"] == "embedded"
    assert any(c["type"] == "Ready" and c["status"] == "True" for c in status["conditions"])


def test_built_in_roles_namespaces_and_settings_exist(admin: httpx.Client) -> None:
    mgmt = "/apis/management.llmos.ai/v1"
    roles = {r["metadata"]["name"] for r in admin.get(f"{mgmt}/globalroles").json()["items"]}
    assert {"admin", "user"} <= roles
    templates = {t["metadata"]["name"] for t in admin.get(f"{mgmt}/roletemplates").json()["items"]}
    assert {"namespace-owner", "namespace-member", "namespace-readonly"} <= templates
    namespaces = {n["metadata"]["name"] for n in admin.get(f"{mgmt}/namespaces").json()["items"]}
    assert {"default", "llmos-public", "llmos-system"} <= namespaces
    ttl = admin.get(f"{mgmt}/settings/auth-user-session-ttl-minutes").json()
    assert ttl["spec"]["default"] == "720"
    refused = admin.delete(f"{mgmt}/globalroles/admin")
    assert refused.status_code == 403 and "built in" in refused.json()["message"]


def test_yaml_in_and_out(admin: httpx.Client) -> None:
    body = b"apiVersion: ml.llmos.ai/v1\nkind: ModelService\nmetadata:\n  name: yml\nspec:\n  model: m\n  replicas: 0\n"
    created = admin.post(
        "/apis/ml.llmos.ai/v1/namespaces/default/modelservices",
        content=body,
        headers={"Content-Type": "application/yaml"},
    )
    assert created.status_code == 201
    fetched = admin.get(
        "/apis/ml.llmos.ai/v1/namespaces/default/modelservices/yml",
        headers={"Accept": "application/yaml"},
    )
    assert fetched.headers["content-type"].startswith("application/yaml")
    assert yaml.safe_load(fetched.text)["spec"]["model"] == "m"
