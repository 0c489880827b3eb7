"""What the Kubernetes runtime makes of pod states it cannot provoke on kwok.

kwok plays pods that schedule and become ready (tests/kube/test_runtime.py);
crash loops, OOM kills, image pulls, model fetches and evictions come from a
real kubelet, so their pod statuses are written out here as a kubelet reports
them, and the status and Events LLMOS derives are checked.
"""

from __future__ import annotations

import re
from typing import Any

import pytest

from llmos.runtime.kube import mirror, render


def pod(index: int, **status: Any) -> dict[str, Any]:
    return {
        "metadata": {"name": f"ms-m-{index}", "uid": f"uid-{index}"},
        "spec": {"nodeName": "gpu-node-1"},
        "status": {
            "conditions": [{"type": "PodScheduled", "status": "True"}],
            **status,
        },
    }


def ready_pod(index: int) -> dict[str, Any]:
    return pod(
        index,
        podIP=f"10.42.0.{index + 10}",
        conditions=[
            {"type": "PodScheduled", "status": "True"},
            {"type": "Ready", "status": "True"},
        ],
        containerStatuses=[{"name": "engine", "state": {"running": {}}, "restartCount": 0}],
    )


def reasons(observed: mirror.Observed) -> list[str]:
    return [h.reason for h in observed.happenings]


def test_ready_pods_are_endpoints_in_replica_order() -> None:
    observed = mirror.replicated(2, [ready_pod(1), ready_pod(0)])
    assert observed.phase == "Ready" and observed.ready == 2
    assert observed.endpoints == ["http://10.42.0.10:8000", "http://10.42.0.11:8000"]
    assert {"Scheduled", "Started", "Ready"} <= set(reasons(observed))
    assert observed.conditions["Ready"][0] is True


def test_an_unschedulable_pod_is_pending_with_the_schedulers_reason() -> None:
    why = "0/3 nodes are available: 3 Insufficient nvidia.com/gpu."
    stuck = {
        "metadata": {"name": "ms-m-0", "uid": "u"},
        "spec": {},
        "status": {
            "conditions": [
                {
                    "type": "PodScheduled",
                    "status": "False",
                    "reason": "Unschedulable",
                    "message": why,
                }
            ]
        },
    }
    observed = mirror.replicated(1, [stuck])
    assert observed.phase == "Pending"
    assert why in observed.message
    assert observed.conditions["Scheduled"][:2] == (False, "FailedScheduling")


def test_a_pod_fetching_its_model_is_downloading() -> None:
    fetching = pod(0, initContainerStatuses=[{"name": "fetch-model", "state": {"running": {}}}])
    observed = mirror.replicated(1, [fetching])
    assert observed.phase == "Downloading"
    assert "Downloading" in reasons(observed)
    assert "Started" not in reasons(observed), "the fetch is not the engine starting"


def test_a_crash_loop_names_the_exit_and_an_oom_kill_is_its_own_event() -> None:
    crashing = pod(
        0,
        containerStatuses=[
            {
                "name": "engine",
                "restartCount": 3,
                "state": {"waiting": {"reason": "CrashLoopBackOff"}},
                "lastState": {"terminated": {"reason": "OOMKilled", "exitCode": 137}},
            }
        ],
    )
    observed = mirror.replicated(1, [crashing])
    assert observed.phase == "CrashLoop"
    assert "OOMKilled" in observed.message
    assert {"OOMKilled", "BackOff"} <= set(reasons(observed))
    oom = next(h for h in observed.happenings if h.reason == "OOMKilled")
    assert oom.type == "Warning" and "spec.resources.memory" in oom.message
    assert observed.conditions["CrashLoop"][0] is True
    # Each restart is a new happening; the same one seen twice is not.
    again = mirror.replicated(1, [crashing])
    assert [h.key for h in again.happenings] == [h.key for h in observed.happenings]


def test_an_image_that_cannot_be_pulled_fails_naming_the_image() -> None:
    pulling = pod(
        0,
        containerStatuses=[
            {
                "name": "engine",
                "image": "vllm/vllm-openai:v0.11.0",
                "state": {"waiting": {"reason": "ImagePullBackOff", "message": "not found"}},
            }
        ],
    )
    observed = mirror.replicated(1, [pulling])
    assert observed.phase == "Failed"
    assert "vllm/vllm-openai:v0.11.0" in observed.message


def test_an_evicted_pod_is_a_warning() -> None:
    evicted = pod(0, phase="Failed", reason="Evicted", message="The node was low on memory.")
    observed = mirror.replicated(1, [evicted])
    (event,) = [h for h in observed.happenings if h.reason == "Evicted"]
    assert event.type == "Warning" and "low on memory" in event.message


def test_scaled_to_zero_is_stopped() -> None:
    observed = mirror.replicated(0, [])
    assert observed.phase == "Stopped"
    assert observed.conditions["Ready"][0] is True


def test_a_claim_is_ready_once_bound() -> None:
    assert mirror.claim(None).phase == "Pending"
    waiting = {"spec": {"storageClassName": "local-path"}, "status": {"phase": "Pending"}}
    assert "local-path" in mirror.claim(waiting).message
    bound = {
        "spec": {"volumeName": "pv-1"},
        "status": {"phase": "Bound", "capacity": {"storage": "20Gi"}},
    }
    observed = mirror.claim(bound)
    assert observed.phase == "Ready" and observed.extra["capacity"] == "20Gi"


def test_long_names_still_make_valid_statefulsets() -> None:
    name = "a" * 63
    child = render.child_name("ModelService", name)
    assert len(child) <= 52 and child.startswith("ms-aaa")
    assert child != render.child_name("ModelService", "a" * 62)


def test_engine_auto_in_cluster_mode_goes_by_the_model_name() -> None:
    def ms(model: str, **resources: Any) -> dict[str, Any]:
        return {"spec": {"model": model, "resources": resources}}

    assert render.serving_engine(ms("bundled:smollm2")) == "llama-cpp"
    assert render.serving_engine(ms("bartowski/Qwen-GGUF:q4.gguf", gpu=1)) == "llama-cpp"
    assert render.serving_engine(ms("Qwen/Qwen3-8B", gpu=1)) == "vllm"
    assert render.serving_engine(ms("Qwen/Qwen3-0.6B")) == "transformers"


def test_what_the_fetch_container_is_given() -> None:
    settings = render.KubeSettings.from_settings(
        lambda name: "/var/lib/llmos/models" if name == "kube-model-cache-path" else ""
    )

    def ms(model: str, registry: str = "huggingface") -> dict[str, Any]:
        return {"spec": {"model": model, "modelRegistry": registry}}

    assert render.fetch_source(ms("Qwen/Qwen3-8B"), settings) == ("Qwen/Qwen3-8B", "huggingface")
    assert render.fetch_source(ms("bundled:smollm2"), settings)[0] == "bundled:smollm2"
    # A node path inside the cache is the container's /models path.
    inside = ms("/var/lib/llmos/models/mine/q4.gguf", "local")
    assert render.fetch_source(inside, settings) == ("/models/mine/q4.gguf", "local")
    qwen = ms("qwen/Qwen2.5-0.5B-Instruct-GGUF:q4.gguf", "modelscope")
    assert render.fetch_source(qwen, settings) == (
        "qwen/Qwen2.5-0.5B-Instruct-GGUF:q4.gguf",
        "modelscope",
    )
    for bad, words in [
        (ms("/home/me/model.gguf", "local"), "inside the nodes' model cache"),
        (ms("/var/lib/llmos/models-other/x"), "inside the nodes' model cache"),
    ]:
        with pytest.raises(render.ModelNotFetchable, match=re.escape(words)):
            render.fetch_source(bad, settings)


def test_a_modelscope_model_is_fetched_from_the_modelscope_endpoint_with_its_token() -> None:
    defaults = {
        "kube-model-cache-path": "/var/lib/llmos/models",
        "huggingface-endpoint": "https://hf-mirror.example",
        "modelscope-endpoint": "https://www.modelscope.cn",
    }
    settings = render.KubeSettings.from_settings(lambda name: defaults.get(name, ""))

    def fetch_container(registry: str, model: str) -> dict[str, Any]:
        ms = {
            "apiVersion": "ml.llmos.ai/v1",
            "kind": "ModelService",
            "metadata": {"name": "m", "namespace": "team", "uid": "u"},
            "spec": {"model": model, "modelRegistry": registry, "hfTokenSecret": "tok"},
        }
        objects = render.modelservice(ms, settings, hf_token="secret-token")
        (sts,) = [o for o in objects if o["kind"] == "StatefulSet"]
        (fetch,) = sts["spec"]["template"]["spec"]["initContainers"]
        return fetch

    fetch = fetch_container("modelscope", "qwen/Qwen2.5-0.5B-Instruct-GGUF:q4.gguf")
    assert fetch["command"][fetch["command"].index("--registry") + 1] == "modelscope"
    env = {e["name"]: e for e in fetch["env"]}
    assert env["MODELSCOPE_ENDPOINT"]["value"] == "https://www.modelscope.cn"
    assert env["MODELSCOPE_API_TOKEN"]["valueFrom"]["secretKeyRef"]["key"] == "token"
    assert "HF_TOKEN" not in env
    # A Hugging Face model's fetch container is as it was: no ModelScope variables.
    env = {e["name"]: e for e in fetch_container("huggingface", "Qwen/Qwen3-8B")["env"]}
    assert env["HF_ENDPOINT"]["value"] == "https://hf-mirror.example"
    assert "HF_TOKEN" in env and not any(n.startswith("MODELSCOPE") for n in env)


def test_network_policies_admit_the_server_and_a_ray_clusters_own_pods() -> None:
    obj = {
        "apiVersion": "ml.llmos.ai/v1",
        "kind": "MLCluster",
        "metadata": {"name": "rc", "namespace": "team", "uid": "u"},
    }
    on = render.KubeSettings.from_settings(lambda name: "", server_namespace="ops")
    (policy,) = render.network_policy(obj, on, peers=True)
    server, peers = policy["spec"]["ingress"][0]["from"]
    assert server["namespaceSelector"]["matchLabels"] == {"kubernetes.io/metadata.name": "ops"}
    assert peers["podSelector"]["matchLabels"]["llmos.ai/name"] == "rc"
    off = render.KubeSettings.from_settings(
        lambda name: "false" if name == "kube-network-policies" else ""
    )
    assert render.network_policy(obj, off) == []
