"""KubeRuntime.apply's rules that need a cluster state the fixture cannot make on demand.

A fake Kubernetes API records what apply sends: KubeRay's autoscaler changing a
worker group under LLMOS, an API server that fails to answer a read, and which
children apply looks for to prune (and when it need not look).
"""

from __future__ import annotations

import asyncio
import base64
from collections.abc import AsyncIterator, Callable
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
        self.listed: dict[str, list[dict[str, Any]]] = {}  # what a label-selected LIST finds
        self.calls: list[tuple[str, str]] = []

    async def request(self, method: str, path: str, **kw: Any) -> dict[str, Any]:
        self.calls.append((method, path))
        if path in self.failing:
            raise LLMOSError("the API server is busy", Reason.SERVICE_UNAVAILABLE)
        if method == "PATCH":
            self.applied[path] = kw["body"]
            return dict(kw["body"])
        if method == "GET" and path in self.objects:
            return self.objects[path]
        if method == "GET" and kw.get("params", {}).get("labelSelector"):
            return {"items": self.listed.get(path, [])}
        if method == "DELETE":
            return {}
        raise LLMOSError("not found", Reason.NOT_FOUND)

    def lists(self) -> list[str]:
        """The label-selected LISTs of prunable children."""
        return [path for method, path in self.calls if method == "GET" and path in PRUNE_LISTS]

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


# -- pruning --------------------------------------------------------------------------------

POLICIES = "/apis/networking.k8s.io/v1/namespaces/ns/networkpolicies"
# An MLCluster's prunable kinds, each looked for with a label-selected LIST.
PRUNE_LISTS = [
    "/apis/ray.io/v1/namespaces/ns/rayclusters",
    "/api/v1/namespaces/ns/secrets",
    POLICIES,
]


def with_policies(on: dict[str, bool]) -> Callable[[], KubeSettings]:
    """Settings whose ``kube-network-policies`` follows ``on["policies"]``."""
    return lambda: KubeSettings.from_settings(
        lambda name: str(on["policies"]).lower() if name == "kube-network-policies" else "x"
    )


def token_api() -> FakeAPI:
    return FakeAPI({TOKEN: {"data": {"token": base64.b64encode(b"t").decode()}}})


def test_an_unchanged_reapply_makes_no_list_calls() -> None:
    api = token_api()
    runtime = KubeRuntime(api, settings)
    asyncio.run(runtime.apply(cluster()))
    assert sorted(api.lists()) == sorted(PRUNE_LISTS), "the first apply looks for leftovers"
    api.calls.clear()
    asyncio.run(runtime.apply(cluster()))
    assert api.lists() == []
    assert ("PATCH", RC) in api.calls, "the children are still applied"
    # Another process (a new leader) remembers nothing: its first apply prunes.
    api.calls.clear()
    asyncio.run(KubeRuntime(api, settings).apply(cluster()))
    assert sorted(api.lists()) == sorted(PRUNE_LISTS)


def test_a_child_no_longer_asked_for_is_pruned_after_unchanged_applies() -> None:
    on = {"policies": True}
    api = token_api()
    runtime = KubeRuntime(api, with_policies(on))
    for _ in range(2):
        asyncio.run(runtime.apply(cluster()))
    assert ("PATCH", f"{POLICIES}/ray-rc") in api.calls
    on["policies"] = False  # kube-network-policies: false, so no NetworkPolicy is asked for
    api.listed[POLICIES] = [{"metadata": {"name": "ray-rc"}}]
    api.calls.clear()
    asyncio.run(runtime.apply(cluster()))
    assert ("DELETE", f"{POLICIES}/ray-rc") in api.calls


def test_a_failed_deletion_is_tried_again_on_the_next_apply() -> None:
    on = {"policies": True}
    api = token_api()
    runtime = KubeRuntime(api, with_policies(on))
    asyncio.run(runtime.apply(cluster()))
    on["policies"] = False
    api.listed[POLICIES] = [{"metadata": {"name": "ray-rc"}}]
    api.failing = frozenset({f"{POLICIES}/ray-rc"})
    asyncio.run(runtime.apply(cluster()))
    api.failing = frozenset()
    api.calls.clear()
    asyncio.run(runtime.apply(cluster()))  # the same children, but the last prune fell short
    assert ("DELETE", f"{POLICIES}/ray-rc") in api.calls
    api.listed[POLICIES] = []
    api.calls.clear()
    asyncio.run(runtime.apply(cluster()))
    assert api.lists() == []
