"""Cluster mode's preference for the nodes whose model cache already holds the model.

The rendering (a preference only, absent when no node is known), when a running
StatefulSet takes a new preference (never at the cost of rolling its pods), and
the ConfigMap that records the nodes, against a fake Kubernetes API. That a real
API server accepts it all, and that a Ready pod gets its node recorded, is
tests/kube/test_runtime.py's.
"""

from __future__ import annotations

import asyncio
import copy
import json
from typing import Any

import pytest

from llmos._lib.errors import LLMOSError, Reason
from llmos.install.rbac import MODEL_CACHE_CONFIGMAP, server_role
from llmos.runtime.kube import model_cache, render
from llmos.runtime.kube.model_cache import ModelCacheRecord, model_ref
from llmos.runtime.kube.render import KubeSettings
from llmos.runtime.kube.runtime import KubeRuntime

CONFIGMAP = "/api/v1/namespaces/llmos-system/configmaps/llmos-model-cache"
STS = "/apis/apps/v1/namespaces/ns/statefulsets/ms-m"
PODS = "/api/v1/namespaces/ns/pods"


def settings() -> KubeSettings:
    return KubeSettings.from_settings(
        lambda name: "/var/lib/llmos/models" if name == "kube-model-cache-path" else "x"
    )


def ms(**spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "ml.llmos.ai/v1",
        "kind": "ModelService",
        "metadata": {"name": "m", "namespace": "ns", "uid": "u1"},
        "spec": {"model": "Qwen/Qwen2.5-0.5B-Instruct", **spec},
    }


def statefulset(children: list[dict[str, Any]]) -> dict[str, Any]:
    return next(c for c in children if c["kind"] == "StatefulSet")


def preferred(sts: dict[str, Any]) -> list[str] | None:
    """The node names the pod template prefers, in order; None without any affinity."""
    affinity = sts["spec"]["template"]["spec"].get("affinity")
    if affinity is None:
        return None
    terms = affinity["nodeAffinity"]["preferredDuringSchedulingIgnoredDuringExecution"]
    names = []
    for term in terms:
        (field,) = term["preference"]["matchFields"]
        assert (field["key"], field["operator"], term["weight"]) == ("metadata.name", "In", 100)
        (name,) = field["values"]  # the API server takes one value per field term
        names.append(name)
    return names


# -- rendering --------------------------------------------------------------------------------


def test_no_known_node_leaves_the_pod_template_without_any_affinity() -> None:
    sts = statefulset(render.modelservice(ms(), settings()))
    assert preferred(sts) is None
    assert "nodeAffinity" not in json.dumps(sts)
    assert "requiredDuringScheduling" not in json.dumps(sts)


def test_known_nodes_are_preferred_sorted_and_never_required() -> None:
    sts = statefulset(render.modelservice(ms(), settings(), cached_on=["gpu-b", "gpu-a", "gpu-b"]))
    assert preferred(sts) == ["gpu-a", "gpu-b"]
    affinity = sts["spec"]["template"]["spec"]["affinity"]
    assert list(affinity["nodeAffinity"]) == ["preferredDuringSchedulingIgnoredDuringExecution"]


def test_the_preference_is_the_only_difference_and_the_template_hash_ignores_it() -> None:
    plain = statefulset(render.modelservice(ms(), settings()))
    cached = statefulset(render.modelservice(ms(), settings(), cached_on=["gpu-a"]))
    hashes = [s["metadata"]["annotations"][render.TEMPLATE_HASH] for s in (plain, cached)]
    assert hashes[0] == hashes[1]
    del cached["spec"]["template"]["spec"]["affinity"]
    assert cached == plain
    # Anything else in the pod template changes the hash: the pods roll anyway.
    other = statefulset(render.modelservice(ms(engineArgs=["--x"]), settings()))
    assert other["metadata"]["annotations"][render.TEMPLATE_HASH] != hashes[0]
    # On the StatefulSet, not the pod template, so writing it rolls no pod.
    assert render.TEMPLATE_HASH not in json.dumps(plain["spec"]["template"])


@pytest.mark.parametrize(
    ("model", "registry", "ref"),
    [
        ("Qwen/Qwen2.5-0.5B-Instruct", None, "huggingface:Qwen/Qwen2.5-0.5B-Instruct"),
        ("Qwen/Qwen2.5-0.5B-Instruct", "modelscope", "modelscope:Qwen/Qwen2.5-0.5B-Instruct"),
        ("bundled:smollm2", None, "bundled:smollm2"),
        # On every node by cluster mode's rule: nothing to prefer.
        ("/var/lib/llmos/models/mine.gguf", "local", None),
        ("/home/me/mine.gguf", "local", None),  # not fetchable at all
    ],
)
def test_the_model_reference_is_the_registry_and_the_model(
    model: str, registry: str | None, ref: str | None
) -> None:
    spec: dict[str, Any] = {"model": model}
    if registry:
        spec["modelRegistry"] = registry
    assert model_ref(ms(**spec), settings()) == ref


# -- keeping running pods where they are --------------------------------------------------------


def live_sts(rendered: dict[str, Any], *, pods: int, affinity: Any = None, **hash_: str) -> Any:
    live = copy.deepcopy(rendered)
    live["spec"]["template"]["spec"].pop("affinity", None)
    if affinity is not None:
        live["spec"]["template"]["spec"]["affinity"] = render.cache_affinity(affinity)
    if "hash" in hash_:
        live["metadata"]["annotations"][render.TEMPLATE_HASH] = hash_["hash"]
    elif "no_hash" in hash_:
        del live["metadata"]["annotations"]
    live["status"] = {"replicas": pods}
    return live


@pytest.mark.parametrize(
    ("live", "kept"),
    [
        # Made now: the nodes known now.
        ({"none": True}, ["gpu-a"]),
        # No pods (scaled to 0, about to scale up): nothing rolls.
        ({"pods": 0}, ["gpu-a"]),
        ({"pods": 0, "affinity": ["old"]}, ["gpu-a"]),
        # Running pods, template otherwise unchanged: the live preference stays, even none.
        ({"pods": 2}, None),
        ({"pods": 1, "affinity": ["old"]}, ["old"]),
        # The rest of the template changed: the pods roll anyway, with the nodes known now.
        ({"pods": 1, "affinity": ["old"], "hash": "0123456789abcdef"}, ["gpu-a"]),
        # Made by an LLMOS without the hash: adopted as it is.
        ({"pods": 1, "no_hash": "1"}, None),
    ],
)
def test_a_running_statefulset_takes_new_nodes_only_when_that_rolls_no_pod(
    live: dict[str, Any], kept: list[str] | None
) -> None:
    sts = statefulset(render.modelservice(ms(), settings(), cached_on=["gpu-a"]))
    if live.get("none"):
        found = None
    else:
        extra = {k: v for k, v in live.items() if k in ("hash", "no_hash")}
        found = live_sts(sts, pods=live["pods"], affinity=live.get("affinity"), **extra)
    render.keep_running_placement(sts, found)
    assert preferred(sts) == kept


# -- the record ---------------------------------------------------------------------------------


class FakeAPI:
    def __init__(self, objects: dict[str, dict[str, Any]] | None = None) -> None:
        self.objects = objects or {}
        self.failing: set[str] = set()  # methods refused on the ConfigMap
        self.calls: list[tuple[str, str]] = []
        self.applied: dict[str, dict[str, Any]] = {}

    async def request(self, method: str, path: str, **kw: Any) -> dict[str, Any]:
        self.calls.append((method, path))
        if path == CONFIGMAP and method in self.failing:
            raise LLMOSError("forbidden", Reason.FORBIDDEN)
        if method == "PATCH":
            self.applied[path] = kw["body"]
            if path == CONFIGMAP:
                self.objects[path] = copy.deepcopy(kw["body"])
            return dict(kw["body"])
        if method == "GET" and path in self.objects:
            return copy.deepcopy(self.objects[path])
        if method == "GET" and kw.get("params", {}).get("labelSelector"):
            return {"items": [p for p in self.objects.get(PODS, {}).get("items", [])]}
        raise LLMOSError("not found", Reason.NOT_FOUND)

    def writes(self) -> int:
        return self.calls.count(("PATCH", CONFIGMAP))

    def recorded(self) -> list[dict[str, Any]]:
        result: list[dict[str, Any]] = json.loads(self.objects[CONFIGMAP]["data"][model_cache.KEY])
        return result


def record(api: FakeAPI) -> ModelCacheRecord:
    return ModelCacheRecord(api, lambda: "llmos-system")


def test_nodes_are_noted_newest_first_and_written_only_when_new() -> None:
    api = FakeAPI()
    cache = record(api)

    async def run() -> None:
        assert await cache.nodes("hf:a") == []
        await cache.note("hf:a", ["n1"])
        await cache.note("hf:a", ["n1", ""])  # known already (and a pod without a node)
        assert api.writes() == 1
        await cache.note("hf:b", ["n2"])
        await cache.note("hf:a", ["n3", "n1"])
        assert await cache.nodes("hf:a") == ["n3", "n1"]
        assert await record(api).nodes("hf:a") == ["n3", "n1"], "read back by another process"

    asyncio.run(run())
    assert api.writes() == 3
    assert api.recorded() == [
        {"model": "hf:a", "nodes": ["n3", "n1"]},
        {"model": "hf:b", "nodes": ["n2"]},
    ]
    configmap = api.objects[CONFIGMAP]
    assert configmap["metadata"]["labels"] == {"app.kubernetes.io/part-of": "llmos"}


def test_the_record_is_bounded_by_nodes_per_model_and_by_models(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(model_cache, "MAX_NODES", 3)
    monkeypatch.setattr(model_cache, "MAX_MODELS", 2)
    api = FakeAPI()
    cache = record(api)

    async def run() -> None:
        for node in ["n1", "n2", "n3", "n4"]:
            await cache.note("hf:a", [node])
        await cache.note("hf:b", ["n1"])
        await cache.note("hf:c", ["n1"])

    asyncio.run(run())
    assert api.recorded() == [
        {"model": "hf:c", "nodes": ["n1"]},
        {"model": "hf:b", "nodes": ["n1"]},
    ]
    asyncio.run(cache.note("hf:c", ["n2"]))
    assert api.recorded()[0] == {"model": "hf:c", "nodes": ["n2", "n1"]}


def test_a_note_adds_to_what_another_server_wrote_meanwhile() -> None:
    api = FakeAPI()
    mine, theirs = record(api), record(api)
    asyncio.run(mine.note("hf:a", ["n1"]))
    asyncio.run(theirs.note("hf:b", ["n2"]))
    asyncio.run(mine.note("hf:a", ["n3"]))  # its own copy is older than the ConfigMap
    assert api.recorded() == [
        {"model": "hf:a", "nodes": ["n3", "n1"]},
        {"model": "hf:b", "nodes": ["n2"]},
    ]


def test_the_record_is_read_again_after_a_while(monkeypatch: pytest.MonkeyPatch) -> None:
    api = FakeAPI()
    cache = record(api)
    asyncio.run(cache.nodes("hf:a"))
    asyncio.run(record(api).note("hf:a", ["n1"]))  # another server, later
    assert asyncio.run(cache.nodes("hf:a")) == [], "not before REFRESH_SECONDS"
    monkeypatch.setattr(model_cache, "REFRESH_SECONDS", -1.0)
    assert asyncio.run(cache.nodes("hf:a")) == ["n1"]


def test_an_unreadable_record_fails_nothing_and_is_tried_once_a_while(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    api = FakeAPI()
    api.failing = {"GET", "PATCH"}
    cache = record(api)
    assert asyncio.run(cache.nodes("hf:a")) == []
    asyncio.run(cache.note("hf:a", ["n1"]))
    assert asyncio.run(cache.nodes("hf:a")) == []
    assert len(api.calls) == 1, "no more calls until REFRESH_SECONDS have passed"
    warnings = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert len(warnings) == 1, "said once, not at every reconcile"
    assert "could not read the ConfigMap llmos-system/llmos-model-cache" in warnings[0]
    later = model_cache.monotonic() + model_cache.REFRESH_SECONDS + 1
    monkeypatch.setattr(model_cache, "monotonic", lambda: later)
    api.failing = set()
    asyncio.run(cache.note("hf:a", ["n1"]))
    assert api.recorded() == [{"model": "hf:a", "nodes": ["n1"]}]


def test_an_unwritable_record_fails_nothing(caplog: pytest.LogCaptureFixture) -> None:
    api = FakeAPI()
    api.failing = {"PATCH"}
    cache = record(api)
    for node in ["n1", "n2"]:
        asyncio.run(cache.note("hf:a", [node]))
    assert api.writes() == 1, "the second note waits for REFRESH_SECONDS"
    warnings = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert len(warnings) == 1 and "could not update the ConfigMap" in warnings[0]
    assert asyncio.run(cache.nodes("hf:a")) == []


def test_a_record_someone_else_mangled_starts_afresh() -> None:
    api = FakeAPI({CONFIGMAP: {"data": {model_cache.KEY: '{"not": "a list"}'}}})
    cache = record(api)
    assert asyncio.run(cache.nodes("hf:a")) == []
    asyncio.run(cache.note("hf:a", ["n1"]))
    assert api.recorded() == [{"model": "hf:a", "nodes": ["n1"]}]


def test_the_servers_role_may_write_that_configmap_and_no_other() -> None:
    # tests/kube proves this is enough: its server holds only this role.
    assert MODEL_CACHE_CONFIGMAP == model_cache.CONFIGMAP
    rules = [r for r in server_role()["rules"] if "configmaps" in r["resources"]]
    assert rules == [
        {
            "apiGroups": [""],
            "resources": ["configmaps"],
            "resourceNames": [model_cache.CONFIGMAP],
            "verbs": ["create", "get", "patch"],
        }
    ]


# -- through the runtime -------------------------------------------------------------------------


def ready_pod(node: str) -> dict[str, Any]:
    return {
        "metadata": {"name": "ms-m-0", "uid": "p0"},
        "spec": {"nodeName": node},
        "status": {"conditions": [{"type": "Ready", "status": "True"}], "podIP": "10.0.0.1"},
    }


def test_a_ready_pod_notes_its_node_and_the_next_modelservice_prefers_it() -> None:
    api = FakeAPI({PODS: {"items": [ready_pod("gpu-7")]}})
    runtime = KubeRuntime(api, settings)
    asyncio.run(runtime.apply(ms()))
    assert preferred(api.applied[STS]) is None, "nothing known yet"
    asyncio.run(runtime.observe(ms()))
    assert api.recorded() == [
        {"model": "huggingface:Qwen/Qwen2.5-0.5B-Instruct", "nodes": ["gpu-7"]}
    ]

    # The same ModelService, running: its template stays as it is (no rolling restart).
    live = copy.deepcopy(api.applied[STS])
    live["status"] = {"replicas": 1}
    api.objects[STS] = live
    asyncio.run(runtime.apply(ms()))
    assert preferred(api.applied[STS]) is None
    # Made afresh (or scaled from 0): its pods prefer gpu-7.
    del api.objects[STS]
    asyncio.run(runtime.apply(ms()))
    assert preferred(api.applied[STS]) == ["gpu-7"]
    # A local model prefers nothing and notes nothing.
    local = ms(model="/var/lib/llmos/models/x.gguf", modelRegistry="local")
    asyncio.run(runtime.observe(local))
    asyncio.run(runtime.apply(local))
    assert preferred(api.applied[STS]) is None
    assert api.writes() == 1
