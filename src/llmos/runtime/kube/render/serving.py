"""A ModelService as a StatefulSet, a headless Service and its model-fetching init container.

Also the StatefulSet's preference for the nodes whose model cache already holds
its model (:func:`cache_affinity`, kept from rolling running pods by
:func:`keep_running_placement`); :mod:`llmos.runtime.kube.model_cache` records
which nodes those are.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from typing import Any

from llmos.runtime.kube.render.common import (
    MODEL_CACHE,
    SERVING_PORT,
    KubeSettings,
    Unsupported,
    child_meta,
    child_name,
    container_resources,
    env_vars,
    labels,
    network_policy,
    volume_mounts,
)

# -- ModelService -------------------------------------------------------------------------


def serving_engine(ms: dict[str, Any]) -> str:
    """The engine for a ModelService in cluster mode; ``auto`` decides from the model name.

    A GGUF model (the bundled one, a ``repo:file.gguf``, a local ``.gguf``, or a repo
    whose name says GGUF) goes to llama.cpp; anything else to vLLM on GPUs, or to
    LLMOS's transformers server when no GPU is asked for.
    """
    spec = ms["spec"]
    engine = str(spec.get("engine") or "auto")
    if engine != "auto":
        return engine
    model = str(spec["model"])
    if model.startswith("bundled:") or model.lower().endswith(".gguf") or "gguf" in model.lower():
        return "llama-cpp"
    resources = spec.get("resources") or {}
    if resources.get("gpu") or resources.get("gpuMemory"):
        return "vllm"
    return "transformers"


def model_link(ms: dict[str, Any]) -> str:
    """Where the init container links the fetched model for the serving container."""
    meta = ms["metadata"]
    return f"{MODEL_CACHE}/links/{meta['namespace']}.{meta['name']}"


def _serving_container(ms: dict[str, Any], engine: str, settings: KubeSettings) -> dict[str, Any]:
    spec = ms["spec"]
    served = str(spec.get("servedModelName") or ms["metadata"]["name"])
    model = model_link(ms)
    port = str(SERVING_PORT)
    extra = [str(a) for a in spec.get("engineArgs") or []]
    if engine == "vllm":
        image = settings.vllm_image
        command = ["vllm", "serve", model, "--host", "0.0.0.0", "--port", port]
        command += ["--served-model-name", served]
        gpus = int((spec.get("resources") or {}).get("gpu") or 0)
        if gpus > 1 and "--tensor-parallel-size" not in extra:
            command += ["--tensor-parallel-size", str(gpus)]
        health = "/health"
    elif engine == "llama-cpp":
        image = settings.llama_cpp_image
        command = ["/app/llama-server", "--model", model, "--alias", served]
        command += ["--host", "0.0.0.0", "--port", port]
        gpus = int((spec.get("resources") or {}).get("gpu") or 0)
        if (gpus or (spec.get("resources") or {}).get("gpuMemory")) and "-ngl" not in extra:
            command += ["--n-gpu-layers", "999"]
        health = "/health"
    else:
        image = settings.llmos_image
        command = ["python", "-m", "llmos.engines.hf_server", "--model", model]
        command += ["--served-model-name", served, "--host", "0.0.0.0", "--port", port]
        health = "/health"
    probe = {"httpGet": {"path": health, "port": "http"}, "periodSeconds": 5, "timeoutSeconds": 3}
    return {
        "name": "engine",
        "image": image,
        "command": [*command, *extra],
        "ports": [{"name": "http", "containerPort": SERVING_PORT, "protocol": "TCP"}],
        "env": env_vars(spec.get("env"), HF_HUB_OFFLINE="1", HF_HUB_CACHE=f"{MODEL_CACHE}/hub"),
        "resources": container_resources(spec.get("resources")),
        # Loading a large model takes minutes: up to 30 of them before liveness counts.
        "startupProbe": {**probe, "failureThreshold": 360},
        "readinessProbe": {**probe, "failureThreshold": 3},
        "livenessProbe": {**probe, "failureThreshold": 6},
        "volumeMounts": [
            {"name": "models", "mountPath": MODEL_CACHE},
            {"name": "shm", "mountPath": "/dev/shm"},
        ],
    }


class ModelNotFetchable(Unsupported):
    """A ModelService whose model the cluster's init container cannot fetch (why)."""


def fetch_source(ms: dict[str, Any], settings: KubeSettings) -> tuple[str, str]:
    """The model and registry as the fetch container sees them, or ModelNotFetchable.

    A local path must be inside the nodes' model cache (``kube-model-cache-path``),
    which the container mounts at /models.
    """
    spec = ms["spec"]
    model, registry = str(spec["model"]), str(spec.get("modelRegistry") or "huggingface")
    local = registry == "local" or model.startswith(("/", "./", "~"))
    if not local or model.startswith("bundled:"):
        return model, registry
    cache = settings.model_cache_path.rstrip("/")
    if model != cache and not model.startswith(cache + "/"):
        raise ModelNotFetchable(
            f"spec.model: in cluster mode a local model must be inside the nodes' model "
            f"cache {cache} (the kube-model-cache-path Setting), present on every node "
            f"that may run it; {model} is not"
        )
    return MODEL_CACHE + model[len(cache) :], "local"


def _fetch_container(
    ms: dict[str, Any], settings: KubeSettings, token_secret: str | None
) -> dict[str, Any]:
    model, registry = fetch_source(ms, settings)
    env = env_vars(
        None,
        HF_ENDPOINT=settings.huggingface_endpoint,
        HF_HUB_CACHE=f"{MODEL_CACHE}/hub",
        # Only for ModelScope models: other pods' templates stay as they were.
        MODELSCOPE_ENDPOINT=settings.modelscope_endpoint if registry == "modelscope" else "",
    )
    if token_secret:
        # spec.hfTokenSecret's token, for whichever hub the model comes from.
        env.append(
            {
                "name": "MODELSCOPE_API_TOKEN" if registry == "modelscope" else "HF_TOKEN",
                "valueFrom": {"secretKeyRef": {"name": token_secret, "key": "token"}},
            }
        )
    return {
        "name": "fetch-model",
        "image": settings.llmos_image,
        "command": [
            "python",
            "-m",
            "llmos.engines.fetch",
            "--model",
            model,
            "--registry",
            registry,
            "--cache",
            MODEL_CACHE,
            "--link",
            model_link(ms),
        ],
        "env": env,
        "volumeMounts": [{"name": "models", "mountPath": MODEL_CACHE}],
        # The node's cache is a hostPath that the kubelet makes root-owned; the LLMOS
        # image runs as uid 1000 otherwise.
        "securityContext": {"runAsUser": 0},
    }


def token_secret_name(ms: dict[str, Any]) -> str:
    return child_name("ModelService", ms["metadata"]["name"]) + "-hf-token"


# -- where the model's files already are ---------------------------------------------------

# On the StatefulSet itself (not its pod template, so writing it rolls no pod): a digest
# of the pod template as rendered without the node preference.
TEMPLATE_HASH = "llmos.ai/template-hash"


def cache_affinity(nodes: Sequence[str]) -> dict[str, Any] | None:
    """A preference, never a requirement, for ``nodes``: those whose cache holds the model.

    None when no node is known, so the pod template is then exactly what it was
    without this feature. One term per node, on the Node's name (``matchFields``
    on ``metadata.name`` takes one value per term; it is what a pod's
    ``spec.nodeName`` says, which the ``kubernetes.io/hostname`` label usually but
    not always repeats). Every term weighs the same, and the nodes are sorted, so
    the same nodes always render the same template.
    """
    if not nodes:
        return None
    terms = [
        {
            "weight": 100,
            "preference": {
                "matchFields": [{"key": "metadata.name", "operator": "In", "values": [node]}]
            },
        }
        for node in sorted(set(nodes))
    ]
    return {"nodeAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": terms}}


def _template_hash(template: dict[str, Any]) -> str:
    text = json.dumps(template, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def keep_running_placement(sts: dict[str, Any], live: dict[str, Any] | None) -> None:
    """Give ``sts`` the live StatefulSet's node preference while a new one would roll pods.

    Any change to a StatefulSet's pod template replaces its running pods one by
    one. The nodes known to hold the model grow as its pods become ready, so a
    template that always named them all would restart a ModelService's replicas
    each time a node is added, its own first one included. So the preference is
    renewed only when that costs no restart: when the StatefulSet is made, when
    the rest of its pod template changes anyway (``TEMPLATE_HASH`` differs: the
    pods are replaced regardless, and the new ones get the nodes known now), and
    when it has no pods (scaled to 0, about to scale up). Otherwise the live
    template's preference (or its lack of one) is kept as it is, and pods that
    Kubernetes makes for it later (a scale-up, a pod rescheduled off a drained
    node) prefer the nodes known when the template last changed. A StatefulSet
    made before this annotation existed is adopted as it is.

    ``live`` is the StatefulSet as the API server has it, or None.
    """
    if live is None or not int((live.get("status") or {}).get("replicas") or 0):
        return
    live_hash = ((live.get("metadata") or {}).get("annotations") or {}).get(TEMPLATE_HASH)
    if live_hash is not None and live_hash != sts["metadata"]["annotations"][TEMPLATE_HASH]:
        return
    live_pod = ((live.get("spec") or {}).get("template") or {}).get("spec") or {}
    pod = sts["spec"]["template"]["spec"]
    if live_pod.get("affinity"):
        pod["affinity"] = live_pod["affinity"]
    else:
        pod.pop("affinity", None)


def modelservice(
    ms: dict[str, Any],
    settings: KubeSettings,
    hf_token: str | None = None,
    cached_on: Sequence[str] = (),
) -> list[dict[str, Any]]:
    """A ModelService's Service, StatefulSet, and its Hugging Face token as a Secret.

    ``cached_on``: the nodes whose model cache holds the same model, which its pods
    prefer (:func:`cache_affinity`; the runtime decides, with
    :func:`keep_running_placement`, whether a running StatefulSet takes them).
    """
    spec = ms["spec"]
    name = child_name("ModelService", ms["metadata"]["name"])
    selector = labels(ms)
    engine = serving_engine(ms)
    objects: list[dict[str, Any]] = []
    secret = None
    if hf_token:
        secret = token_secret_name(ms)
        objects.append(
            {
                "apiVersion": "v1",
                "kind": "Secret",
                "metadata": child_meta(ms, secret),
                "type": "Opaque",
                "stringData": {"token": hf_token},
            }
        )
    objects.append(
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": child_meta(ms, name),
            "spec": {
                # Headless: the gateway balances over the pods itself (fewest outstanding).
                "clusterIP": "None",
                "publishNotReadyAddresses": False,
                "selector": selector,
                "ports": [{"name": "http", "port": SERVING_PORT, "targetPort": "http"}],
            },
        }
    )
    volumes, mounts = volume_mounts(spec.get("volumes"), "/data")
    container = _serving_container(ms, engine, settings)
    container["volumeMounts"] += mounts
    pod: dict[str, Any] = {
        "metadata": {"labels": selector, "annotations": {"llmos.ai/engine": engine}},
        "spec": {
            "initContainers": [_fetch_container(ms, settings, secret)],
            "containers": [container],
            "volumes": [
                {
                    "name": "models",
                    "hostPath": {"path": settings.model_cache_path, "type": "DirectoryOrCreate"},
                },
                {"name": "shm", "emptyDir": {"medium": "Memory", "sizeLimit": settings.shm_size}},
                *volumes,
            ],
            "terminationGracePeriodSeconds": 30,
        },
    }
    digest = _template_hash(pod)
    affinity = cache_affinity(cached_on)
    if affinity:
        pod["spec"]["affinity"] = affinity
    objects.append(
        {
            "apiVersion": "apps/v1",
            "kind": "StatefulSet",
            "metadata": child_meta(ms, name, annotations={TEMPLATE_HASH: digest}),
            "spec": {
                "serviceName": name,
                "replicas": int(spec.get("replicas", 1)),
                # Replicas are independent servers: start and stop them all at once.
                "podManagementPolicy": "Parallel",
                "selector": {"matchLabels": selector},
                "template": pod,
            },
        }
    )
    objects += network_policy(ms, settings)
    return objects
