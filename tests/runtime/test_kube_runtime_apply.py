"""KubeRuntime.apply's rules that need a cluster state the fixture cannot make on demand.

A fake Kubernetes API records what apply sends: KubeRay's autoscaler changing a
worker group under LLMOS, and an API server that fails to answer a read.
"""

from __future__ import annotations

import asyncio
import base64
from collections.abc import AsyncIterator
from typing import Any

import pytest

from llmos._lib.errors import LLMOSError, Reason
from llmos.runtime.kube.render import KubeSettings
from llmos.runtime.kube.runtime import KubeRuntime


class FakeAPI:
    def __init__(
        self, objects: dict[str, dict[str, Any]], failing: frozenset[str] = frozenset()
    ) -> None:
        self.objects = objects
        self.failing = failing
        self.applied: dict[str, dict[str, Any]] = {}

    async def request(self, method: str, path: str, **kw: Any) -> dict[str, Any]:
        if path in self.failing:
            raise LLMOSError("the API server is busy", Reason.SERVICE_UNAVAILABLE)
        if method == "PATCH":
            self.applied[path] = kw["body"]
            return dict(kw["body"])
        if method == "GET" and path in self.objects:
            return self.objects[path]
        if method == "GET" and kw.get("params", {}).get("labelSelector"):
            return {"items": []}
        raise LLMOSError("not found", Reason.NOT_FOUND)

    async def lines(self, path: str, params: dict[str, str]) -> AsyncIterator[str]:
        raise NotImplementedError

    async def watch(self, path: str, params: dict[str, str], since: int) -> Any:
        raise NotImplementedError


def settings() -> KubeSettings:
    return KubeSettings.from_settings(lambda name: "x")


def cluster(**spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "ml.llmos.ai/v1",
        "kind": "MLCluster",
        "metadata": {"name": "rc", "namespace": "ns", "uid": "u1"},
        "spec": spec,
    }


RC = "/apis/ray.io/v1/namespaces/ns/rayclusters/ray-rc"
TOKEN = "/api/v1/namespaces/ns/secrets/ray-rc-token"


def test_an_autoscaled_group_keeps_the_autoscalers_count_within_its_bounds() -> None:
    live = {
        "spec": {
            "workerGroupSpecs": [
                {"groupName": "w", "replicas": 3, "scaleStrategy": {"workersToDelete": ["p"]}},
                {"groupName": "big", "replicas": 9},
            ]
        }
    }
    api = FakeAPI({RC: live, TOKEN: {"data": {"token": base64.b64encode(b"t").decode()}}})
    groups = [
        {"name": "w", "replicas": 1, "minReplicas": 0, "maxReplicas": 4},
        {"name": "big", "replicas": 1, "minReplicas": 0, "maxReplicas": 2},
        {"name": "new", "replicas": 1},
    ]
    runtime = KubeRuntime(api, settings)
    asyncio.run(runtime.apply(cluster(workerGroups=groups, idleTimeoutSeconds=60)))
    sent = {g["groupName"]: g for g in api.applied[RC]["spec"]["workerGroupSpecs"]}
    assert sent["w"]["replicas"] == 3 and sent["w"]["scaleStrategy"] == {"workersToDelete": ["p"]}
    assert sent["big"]["replicas"] == 2  # clamped to its maxReplicas
    assert sent["new"]["replicas"] == 1  # not in the live cluster yet: as asked


def test_without_autoscaling_the_spec_decides() -> None:
    live = {"spec": {"workerGroupSpecs": [{"groupName": "w", "replicas": 3}]}}
    api = FakeAPI({RC: live, TOKEN: {"data": {"token": base64.b64encode(b"t").decode()}}})
    asyncio.run(KubeRuntime(api, settings).apply(cluster(workerGroups=[{"name": "w"}])))
    assert api.applied[RC]["spec"]["workerGroupSpecs"][0]["replicas"] == 1


def test_a_failed_read_of_the_token_never_makes_a_new_one() -> None:
    api = FakeAPI({}, failing=frozenset({TOKEN}))
    with pytest.raises(LLMOSError) as caught:
        asyncio.run(KubeRuntime(api, settings).apply(cluster()))
    assert caught.value.reason == Reason.SERVICE_UNAVAILABLE
    assert not api.applied, "nothing may be applied, least of all a new token"


def test_a_missing_token_secret_is_made_once() -> None:
    api = FakeAPI({})
    asyncio.run(KubeRuntime(api, settings).apply(cluster()))
    assert len(api.applied[TOKEN]["stringData"]["token"]) == 64
