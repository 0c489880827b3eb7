"""Builders and waits for Volume, VolumeSnapshot and Notebook tests."""

from __future__ import annotations

import time
from typing import Any

import httpx

ML = "/apis/ml.llmos.ai/v1"


def path(plural: str, namespace: str, name: str | None = None) -> str:
    base = f"{ML}/namespaces/{namespace}/{plural}"
    return f"{base}/{name}" if name else base


def create(
    client: httpx.Client, plural: str, namespace: str, obj: dict[str, Any]
) -> dict[str, Any]:
    response = client.post(path(plural, namespace), json=obj)
    assert response.status_code == 201, response.text
    result: dict[str, Any] = response.json()
    return result


def volume(name: str, capacity: str = "1Gi", **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "ml.llmos.ai/v1",
        "kind": "Volume",
        "metadata": {"name": name},
        "spec": {"capacity": capacity, **spec},
    }


def notebook(name: str, **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "ml.llmos.ai/v1",
        "kind": "Notebook",
        "metadata": {"name": name},
        "spec": {"type": "jupyter", **spec},
    }


def mlcluster(name: str, workers: int = 1, **spec: Any) -> dict[str, Any]:
    """A Ray head and one worker group ``cpu`` of ``workers`` nodes, each reserving half a
    CPU (Ray is offered one each)."""
    return {
        "apiVersion": "ml.llmos.ai/v1",
        "kind": "MLCluster",
        "metadata": {"name": name},
        "spec": {
            "head": {"resources": {"cpu": "500m"}},
            "workerGroups": [{"name": "cpu", "replicas": workers, "resources": {"cpu": "500m"}}],
            **spec,
        },
    }


def wait_for(
    client: httpx.Client, url: str, check: Any, what: str, timeout: float = 90.0
) -> dict[str, Any]:
    """Poll ``url`` until ``check(obj)`` is true (the API has no push for plain clients)."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        response = client.get(url)
        last = response.json() if response.status_code == 200 else response.status_code
        if response.status_code == 200 and check(last):
            return dict(last)
        time.sleep(0.2)
    raise AssertionError(f"{url}: {what} did not happen in {timeout}s; last: {last}")


def phase_is(phase: str) -> Any:
    return lambda obj: (obj.get("status") or {}).get("phase") == phase


def condition(obj: dict[str, Any], kind: str) -> dict[str, Any]:
    for item in (obj.get("status") or {}).get("conditions") or []:
        if item["type"] == kind:
            return dict(item)
    return {}
