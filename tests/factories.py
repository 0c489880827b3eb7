"""Builders for test objects, in one place."""

from __future__ import annotations

import uuid
from typing import Any

import httpx

ML = "/apis/ml.llmos.ai/v1"
MGMT = "/apis/management.llmos.ai/v1"


def unique(prefix: str) -> str:
    """A name no other test uses: ``prefix`` and six hex digits."""
    return f"{prefix}-{uuid.uuid4().hex[:6]}"


def modelservice(name: str, **spec: Any) -> dict[str, Any]:
    labels = spec.pop("labels", {})
    return {
        "apiVersion": "ml.llmos.ai/v1",
        "kind": "ModelService",
        "metadata": {"name": name, "labels": labels},
        # Scaled to zero unless a test asks for replicas: these objects test the API,
        # not serving, and every replica would be a real llama.cpp process.
        "spec": {"model": "bundled:smollm2", "replicas": 0, **spec},
    }


def ms_path(namespace: str, name: str | None = None) -> str:
    base = f"{ML}/namespaces/{namespace}/modelservices"
    return f"{base}/{name}" if name else base


def create_ms(client: httpx.Client, namespace: str, name: str, **spec: Any) -> dict[str, Any]:
    response = client.post(ms_path(namespace), json=modelservice(name, **spec))
    assert response.status_code == 201, response.text
    result: dict[str, Any] = response.json()
    return result


def create_namespace(client: httpx.Client, name: str) -> dict[str, Any]:
    body = {"apiVersion": "management.llmos.ai/v1", "kind": "Namespace", "metadata": {"name": name}}
    response = client.post(f"{MGMT}/namespaces", json=body)
    assert response.status_code == 201, response.text
    result: dict[str, Any] = response.json()
    return result


def create_user(
    client: httpx.Client, name: str, password: str, roles: list[str] | None = None
) -> dict[str, Any]:
    body = {
        "apiVersion": "management.llmos.ai/v1",
        "kind": "User",
        "metadata": {"name": name},
        "spec": {"password": password, "globalRoles": roles or ["user"]},
    }
    response = client.post(f"{MGMT}/users", json=body)
    assert response.status_code == 201, response.text
    result: dict[str, Any] = response.json()
    return result


def bind(client: httpx.Client, namespace: str, user: str, template: str) -> dict[str, Any]:
    body = {
        "apiVersion": "management.llmos.ai/v1",
        "kind": "RoleTemplateBinding",
        "metadata": {"name": f"{user}-{template}"},
        "spec": {"user": user, "roleTemplate": template},
    }
    response = client.post(f"{MGMT}/namespaces/{namespace}/roletemplatebindings", json=body)
    assert response.status_code == 201, response.text
    result: dict[str, Any] = response.json()
    return result


EVENTS = "/apis/node.llmos.ai/v1"


def event(name: str, labels: dict[str, str] | None = None, **spec: Any) -> dict[str, Any]:
    """An Event: a namespaced kind no controller writes to, for tests of pure API semantics."""
    return {
        "apiVersion": "node.llmos.ai/v1",
        "kind": "Event",
        "metadata": {"name": name, "labels": labels or {}},
        "spec": {"involvedObject": {"kind": "Thing", "name": "thing"}, "reason": "Test", **spec},
    }


def ev_path(namespace: str, name: str | None = None) -> str:
    base = f"{EVENTS}/namespaces/{namespace}/events"
    return f"{base}/{name}" if name else base


def create_ev(
    client: httpx.Client,
    namespace: str,
    name: str,
    labels: dict[str, str] | None = None,
    **spec: Any,
) -> dict[str, Any]:
    response = client.post(ev_path(namespace), json=event(name, labels, **spec))
    assert response.status_code == 201, response.text
    result: dict[str, Any] = response.json()
    return result


def secret(name: str, **values: str) -> dict[str, Any]:
    return {
        "apiVersion": "management.llmos.ai/v1",
        "kind": "Secret",
        "metadata": {"name": name},
        "spec": {"stringData": values},
    }


def secret_path(namespace: str, name: str | None = None) -> str:
    base = f"{MGMT}/namespaces/{namespace}/secrets"
    return f"{base}/{name}" if name else base


def create_secret(client: httpx.Client, namespace: str, name: str, **values: str) -> dict[str, Any]:
    response = client.post(secret_path(namespace), json=secret(name, **values))
    assert response.status_code == 201, response.text
    result: dict[str, Any] = response.json()
    return result
