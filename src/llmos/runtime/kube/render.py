"""LLMOS objects as the Kubernetes objects that run them (cluster mode).

Pure functions, no I/O: each takes an LLMOS object (as the store returns it)
and the :class:`KubeSettings`, and returns the child objects to apply with
server-side apply. Every child carries the ``llmos.ai/kind`` and
``llmos.ai/name`` labels (how the runtime finds the owner of a changed child)
and a controller owner reference to the LLMOS object, so Kubernetes' garbage
collector deletes the children with it.

- ModelService: a StatefulSet (an init container fetches the model into the
  node's model cache; the engine's image serves it on port 8000; GPUs as
  ``nvidia.com/gpu``; ``/dev/shm`` in memory; probes on the engine's health
  path) and a headless Service, whose per-pod addresses the gateway routes to.
- Notebook: a StatefulSet of one (none when stopped), a Service, and a PVC for
  its home unless it mounts Volumes.
- Volume: a PVC of the storage class the ``kube-storage-class`` Setting names.
- MLCluster: a KubeRay ``RayCluster``.

Child names carry the kind (``ms-``, ``nb-``, ``vol-``, ``ray-``) so a
ModelService and a Notebook may share a name, as they may in LLMOS.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from llmos._lib.quantity import parse_quantity

MANAGED_BY = {"app.kubernetes.io/managed-by": "llmos"}
SERVER_POD = {"app.kubernetes.io/name": "llmos-server"}  # the install Deployment's pods
KIND_LABEL = "llmos.ai/kind"
NAME_LABEL = "llmos.ai/name"
SERVING_PORT = 8000
NOTEBOOK_PORT = 8888
MODEL_CACHE = "/models"
PREFIX = {"ModelService": "ms", "Notebook": "nb", "Volume": "vol", "MLCluster": "ray"}
# StatefulSet pods get a "-N" suffix and a controller-revision-hash label that must fit
# in 63 characters: 52 is the longest StatefulSet name that always works.
_MAX_NAME = 52


@dataclass(frozen=True)
class KubeSettings:
    """The images and storage the Kubernetes runtime uses: the ``kube-*`` Settings."""

    llmos_image: str
    vllm_image: str
    llama_cpp_image: str
    jupyter_image: str
    vscode_image: str
    ray_image: str
    storage_class: str  # empty: the cluster's default storage class
    model_cache_path: str  # a hostPath on each node
    shm_size: str
    huggingface_endpoint: str
    # Ingress to workload pods only from the LLMOS server's pods (and a Ray cluster's own).
    network_policies: bool = True
    server_namespace: str = "llmos-system"  # where the LLMOS server's pods run

    @classmethod
    def from_settings(
        cls, get: Callable[[str], str], server_namespace: str = "llmos-system"
    ) -> KubeSettings:
        """From LLMOS Settings: ``get(name)`` is the value, or its default."""
        return cls(
            network_policies=get("kube-network-policies").lower() != "false",
            server_namespace=server_namespace,
            llmos_image=get("kube-llmos-image"),
            vllm_image=get("kube-vllm-image"),
            llama_cpp_image=get("kube-llama-cpp-image"),
            jupyter_image=get("kube-jupyter-image"),
            vscode_image=get("kube-vscode-image"),
            ray_image=get("kube-ray-image"),
            storage_class=get("kube-storage-class"),
            model_cache_path=get("kube-model-cache-path"),
            shm_size=get("kube-shm-size"),
            huggingface_endpoint=get("huggingface-endpoint"),
        )


def network_policy(
    obj: dict[str, Any], settings: KubeSettings, *, peers: bool = False
) -> list[dict[str, Any]]:
    """Ingress to ``obj``'s pods only from the LLMOS server (and, with ``peers``, each other).

    So nothing else in the cluster reaches an engine behind the gateway's auth and
    limits, or a notebook or Ray head behind the proxy's. Empty when the
    ``kube-network-policies`` Setting is false.
    """
    if not settings.network_policies:
        return []
    server = {
        "namespaceSelector": {
            "matchLabels": {"kubernetes.io/metadata.name": settings.server_namespace}
        },
        "podSelector": {"matchLabels": SERVER_POD},
    }
    sources = [server, {"podSelector": {"matchLabels": labels(obj)}}] if peers else [server]
    return [
        {
            "apiVersion": "networking.k8s.io/v1",
            "kind": "NetworkPolicy",
            "metadata": _meta(obj, child_name(obj["kind"], obj["metadata"]["name"])),
            "spec": {
                "podSelector": {"matchLabels": labels(obj)},
                "policyTypes": ["Ingress"],
                "ingress": [{"from": sources}],
            },
        }
    ]


def child_name(kind: str, name: str) -> str:
    """The name of the children of LLMOS object ``kind``/``name``; at most 52 characters."""
    full = f"{PREFIX[kind]}-{name}"
    if len(full) <= _MAX_NAME:
        return full
    digest = hashlib.sha256(full.encode()).hexdigest()[:8]
    return f"{full[: _MAX_NAME - 9].rstrip('-')}-{digest}"


def labels(obj: dict[str, Any]) -> dict[str, str]:
    return {**MANAGED_BY, KIND_LABEL: obj["kind"], NAME_LABEL: obj["metadata"]["name"]}


def _meta(obj: dict[str, Any], name: str, **extra: Any) -> dict[str, Any]:
    meta = obj["metadata"]
    owner = {
        "apiVersion": obj["apiVersion"],
        "kind": obj["kind"],
        "name": meta["name"],
        "uid": meta["uid"],
        "controller": True,
        "blockOwnerDeletion": True,
    }
    return {
        "name": name,
        "namespace": meta["namespace"],
        "labels": labels(obj),
        "ownerReferences": [owner],
        **extra,
    }


def _resources(spec: dict[str, Any] | None) -> dict[str, Any]:
    """``spec.resources`` as a container's requests and limits.

    A share of a GPU (``gpuMemory``) asks for one whole ``nvidia.com/gpu``: sharing one
    device between pods is the NVIDIA device plugin's time-slicing, configured there.
    """
    spec = spec or {}
    requests: dict[str, str] = {}
    limits: dict[str, str] = {}
    if spec.get("cpu") is not None:
        requests["cpu"] = str(spec["cpu"])
    if spec.get("memory"):
        requests["memory"] = limits["memory"] = str(spec["memory"])
    gpus = int(spec.get("gpu") or 0) or (1 if spec.get("gpuMemory") else 0)
    if gpus:
        requests["nvidia.com/gpu"] = limits["nvidia.com/gpu"] = str(gpus)
    out: dict[str, Any] = {}
    if requests:
        out["requests"] = requests
    if limits:
        out["limits"] = limits
    return out


def _env(items: list[dict[str, Any]] | None, **fixed: str) -> list[dict[str, Any]]:
    env = [{"name": k, "value": v} for k, v in fixed.items() if v]
    return env + [{"name": e["name"], "value": e.get("value", "")} for e in items or []]


def _volume_mounts(
    wanted: list[dict[str, Any]] | None, default_root: str
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Pod volumes and container mounts for ``spec.volumes`` (each an LLMOS Volume's PVC)."""
    volumes, mounts = [], []
    for index, item in enumerate(wanted or []):
        name = f"volume-{index}"
        claim = child_name("Volume", item["name"])
        volumes.append(
            {
                "name": name,
                "persistentVolumeClaim": {
                    "claimName": claim,
                    "readOnly": bool(item.get("readOnly")),
                },
            }
        )
        mounts.append(
            {
                "name": name,
                "mountPath": item.get("mountPath") or f"{default_root}/{item['name']}",
                "readOnly": bool(item.get("readOnly")),
            }
        )
    return volumes, mounts


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
        "env": _env(spec.get("env"), HF_HUB_OFFLINE="1", HF_HUB_CACHE=f"{MODEL_CACHE}/hub"),
        "resources": _resources(spec.get("resources")),
        # Loading a large model takes minutes: up to 30 of them before liveness counts.
        "startupProbe": {**probe, "failureThreshold": 360},
        "readinessProbe": {**probe, "failureThreshold": 3},
        "livenessProbe": {**probe, "failureThreshold": 6},
        "volumeMounts": [
            {"name": "models", "mountPath": MODEL_CACHE},
            {"name": "shm", "mountPath": "/dev/shm"},
        ],
    }


class Unsupported(ValueError):
    """Something an LLMOS object asks for that cluster mode does not offer (why)."""


class ModelNotFetchable(Unsupported):
    """A ModelService whose model the cluster's init container cannot fetch (why)."""


def fetch_source(ms: dict[str, Any], settings: KubeSettings) -> tuple[str, str]:
    """The model and registry as the fetch container sees them, or ModelNotFetchable.

    A local path must be inside the nodes' model cache (``kube-model-cache-path``),
    which the container mounts at /models; ModelScope is not offered in cluster mode.
    """
    spec = ms["spec"]
    model, registry = str(spec["model"]), str(spec.get("modelRegistry") or "huggingface")
    if registry == "modelscope":
        raise ModelNotFetchable(
            "spec.modelRegistry: ModelScope is not supported in cluster mode: use "
            "huggingface (a mirror can be set in the huggingface-endpoint Setting) or local"
        )
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
    env = _env(
        None,
        HF_ENDPOINT=settings.huggingface_endpoint,
        HF_HUB_CACHE=f"{MODEL_CACHE}/hub",
    )
    if token_secret:
        env.append(
            {
                "name": "HF_TOKEN",
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


def modelservice(
    ms: dict[str, Any], settings: KubeSettings, hf_token: str | None = None
) -> list[dict[str, Any]]:
    """A ModelService's Service, StatefulSet, and its Hugging Face token as a Secret."""
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
                "metadata": _meta(ms, secret),
                "type": "Opaque",
                "stringData": {"token": hf_token},
            }
        )
    objects.append(
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": _meta(ms, name),
            "spec": {
                # Headless: the gateway balances over the pods itself (fewest outstanding).
                "clusterIP": "None",
                "publishNotReadyAddresses": False,
                "selector": selector,
                "ports": [{"name": "http", "port": SERVING_PORT, "targetPort": "http"}],
            },
        }
    )
    volumes, mounts = _volume_mounts(spec.get("volumes"), "/data")
    container = _serving_container(ms, engine, settings)
    container["volumeMounts"] += mounts
    pod = {
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
    objects.append(
        {
            "apiVersion": "apps/v1",
            "kind": "StatefulSet",
            "metadata": _meta(ms, name),
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


# -- Volume -------------------------------------------------------------------------------


def volume(vol: dict[str, Any], settings: KubeSettings) -> list[dict[str, Any]]:
    spec = vol["spec"]
    if spec.get("fromSnapshot"):
        raise Unsupported(
            "spec.fromSnapshot: restoring from a VolumeSnapshot is not available in cluster "
            "mode yet"
        )
    claim: dict[str, Any] = {
        "accessModes": [spec.get("accessMode") or "ReadWriteOnce"],
        "resources": {"requests": {"storage": str(spec.get("capacity") or "10Gi")}},
    }
    if settings.storage_class:
        claim["storageClassName"] = settings.storage_class
    return [
        {
            "apiVersion": "v1",
            "kind": "PersistentVolumeClaim",
            "metadata": _meta(vol, child_name("Volume", vol["metadata"]["name"])),
            "spec": claim,
        }
    ]


# -- Notebook -----------------------------------------------------------------------------


def notebook_path(nb: dict[str, Any]) -> str:
    meta = nb["metadata"]
    return f"/notebooks/{meta['namespace']}/{meta['name']}/"


def secret_name(obj: dict[str, Any]) -> str:
    """The Secret holding a Notebook's or an MLCluster's own token (key ``token``)."""
    return child_name(obj["kind"], obj["metadata"]["name"]) + "-token"


def notebook_secret_name(nb: dict[str, Any]) -> str:
    return secret_name(nb)


def _token_secret(obj: dict[str, Any], token: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": _meta(obj, secret_name(obj)),
        "type": "Opaque",
        "stringData": {"token": token},
    }


# The group the images' users belong to, so a fresh volume's files are theirs to write:
# Jupyter's docker-stacks (jovyan, gid 100), code-server (coder, 1000), Ray (ray, 100).
FS_GROUP = {"jupyter": 100, "vscode": 1000, "ray": 100}


def _notebook_container(
    nb: dict[str, Any], settings: KubeSettings
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    spec = nb["spec"]
    base = notebook_path(nb)
    kind = spec.get("type") or "jupyter"
    if kind not in ("jupyter", "vscode"):
        raise Unsupported(
            f"spec.type: {kind} notebooks are not available in cluster mode: use jupyter or vscode"
        )
    # The notebook's secret (a Secret it owns) guards it inside the cluster; LLMOS's proxy
    # presents it, as in embedded mode, after its own authentication and RBAC.
    secret = {"valueFrom": {"secretKeyRef": {"name": notebook_secret_name(nb), "key": "token"}}}
    if kind == "vscode":
        image = settings.vscode_image
        command = ["code-server", "--bind-addr", f"0.0.0.0:{NOTEBOOK_PORT}", "--auth", "password"]
        command += ["--disable-telemetry", "--disable-proxy", "/home/coder"]
        env = [{"name": "HASHED_PASSWORD", **secret}]
        home = "/home/coder"
    else:
        image = settings.jupyter_image
        command = [
            "start-notebook.py",
            f"--ServerApp.base_url={base}",
            f"--ServerApp.port={NOTEBOOK_PORT}",
            "--ServerApp.ip=0.0.0.0",
            "--IdentityProvider.token=$(JUPYTER_TOKEN)",
        ]
        env = [{"name": "JUPYTER_TOKEN", **secret}]
        home = "/home/jovyan"
    volumes, mounts = _volume_mounts(spec.get("volumes"), home)
    if not mounts:
        mounts = [{"name": "home", "mountPath": home}]
    # Jupyter's /api (its version) needs no token.
    probe_path = "/healthz" if kind == "vscode" else f"{base}api"
    return {
        "name": "notebook",
        "image": image,
        "command": command,
        "ports": [{"name": "http", "containerPort": NOTEBOOK_PORT, "protocol": "TCP"}],
        "env": env + _env(spec.get("env")),
        "resources": _resources(spec.get("resources")),
        "readinessProbe": {"httpGet": {"path": probe_path, "port": "http"}, "periodSeconds": 5},
        "volumeMounts": mounts,
    }, volumes


def home_claim_name(nb: dict[str, Any]) -> str:
    return child_name("Notebook", nb["metadata"]["name"]) + "-home"


def notebook(nb: dict[str, Any], settings: KubeSettings, token: str) -> list[dict[str, Any]]:
    """A Notebook's Secret (its token), home PVC (unless it mounts Volumes), Service, StatefulSet.

    The home is a PVC of its own, owned by the Notebook (kept while it is stopped,
    deleted with it), not a StatefulSet claim template: a template can never change,
    so adding a Volume or changing the storage class would wedge the StatefulSet.
    """
    spec = nb["spec"]
    name = child_name("Notebook", nb["metadata"]["name"])
    selector = labels(nb)
    container, volumes = _notebook_container(nb, settings)
    objects = [_token_secret(nb, token), *network_policy(nb, settings)]
    if not volumes:
        claim: dict[str, Any] = {
            "accessModes": ["ReadWriteOnce"],
            "resources": {"requests": {"storage": "10Gi"}},
        }
        if settings.storage_class:
            claim["storageClassName"] = settings.storage_class
        objects.append(
            {
                "apiVersion": "v1",
                "kind": "PersistentVolumeClaim",
                "metadata": _meta(nb, home_claim_name(nb)),
                "spec": claim,
            }
        )
        volumes = [{"name": "home", "persistentVolumeClaim": {"claimName": home_claim_name(nb)}}]
    statefulset: dict[str, Any] = {
        "serviceName": name,
        "replicas": 0 if spec.get("stopped") else 1,
        # A pod that can never be Ready (a bad image, no room) must not block the fix.
        "podManagementPolicy": "Parallel",
        "selector": {"matchLabels": selector},
        "template": {
            "metadata": {"labels": selector},
            "spec": {
                "containers": [container],
                "volumes": volumes,
                "securityContext": {"fsGroup": FS_GROUP[spec.get("type") or "jupyter"]},
            },
        },
    }
    return [
        *objects,
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": _meta(nb, name),
            "spec": {
                "selector": selector,
                "ports": [{"name": "http", "port": NOTEBOOK_PORT, "targetPort": "http"}],
            },
        },
        {
            "apiVersion": "apps/v1",
            "kind": "StatefulSet",
            "metadata": _meta(nb, name),
            "spec": statefulset,
        },
    ]


# -- MLCluster ----------------------------------------------------------------------------


def _ray_resources(spec: dict[str, Any] | None) -> dict[str, str]:
    """``rayStartParams`` that tell Ray what the container was given."""
    spec = spec or {}
    params: dict[str, str] = {}
    if spec.get("cpu") is not None:
        params["num-cpus"] = str(max(1, int(float(parse_quantity(str(spec["cpu"]))))))
    if spec.get("gpu"):
        params["num-gpus"] = str(int(spec["gpu"]))
    return params


def _ray_env(cluster: dict[str, Any]) -> list[dict[str, Any]]:
    """Ray's token auth for every process that talks to the cluster (autoscaler included)."""
    token = {"valueFrom": {"secretKeyRef": {"name": secret_name(cluster), "key": "token"}}}
    return [
        {"name": "RAY_AUTH_MODE", "value": "token"},
        {"name": "RAY_AUTH_TOKEN", **token},
        {"name": "RAY_USAGE_STATS_ENABLED", "value": "0"},
    ]


def _ray_pod(
    cluster: dict[str, Any], resources: dict[str, Any] | None, settings: KubeSettings, head: bool
) -> dict[str, Any]:
    spec = cluster["spec"]
    volumes, mounts = _volume_mounts(spec.get("volumes"), "/home/ray")
    ports = (
        [
            {"name": "gcs", "containerPort": 6379},
            {"name": "dashboard", "containerPort": 8265},
            {"name": "client", "containerPort": 10001},
        ]
        if head
        else []
    )
    # Ray's own token auth (as in embedded mode): its GCS, dashboard and Jobs API want
    # the cluster's token, which LLMOS's proxy adds. Health endpoints need none, so
    # KubeRay's probes still pass.
    container = {
        "name": "ray-head" if head else "ray-worker",
        "image": settings.ray_image,
        "env": _ray_env(cluster),
        "resources": _resources(resources),
        "volumeMounts": [{"name": "shm", "mountPath": "/dev/shm"}, *mounts],
        "ports": ports,
    }
    shm = {"name": "shm", "emptyDir": {"medium": "Memory", "sizeLimit": settings.shm_size}}
    return {
        "metadata": {"labels": labels(cluster)},
        "spec": {
            "containers": [container],
            "volumes": [shm, *volumes],
            "securityContext": {"fsGroup": FS_GROUP["ray"]},
        },
    }


def mlcluster(cluster: dict[str, Any], settings: KubeSettings, token: str) -> list[dict[str, Any]]:
    """An MLCluster's token Secret and its KubeRay RayCluster."""
    spec = cluster["spec"]
    head = spec.get("head") or {}
    ray: dict[str, Any] = {
        "rayVersion": str(spec.get("rayVersion") or settings.ray_image.rpartition(":")[2]),
        "headGroupSpec": {
            "serviceType": "ClusterIP",
            "rayStartParams": {
                "dashboard-host": "0.0.0.0",
                **_ray_resources(head.get("resources")),
            },
            "template": _ray_pod(cluster, head.get("resources"), settings, head=True),
        },
        "workerGroupSpecs": [
            {
                "groupName": group["name"],
                "replicas": int(group.get("replicas", 1)),
                "minReplicas": int(group.get("minReplicas", 0)),
                "maxReplicas": int(
                    group["maxReplicas"]
                    if group.get("maxReplicas") is not None
                    else group.get("replicas", 1)
                ),
                "rayStartParams": _ray_resources(group.get("resources")),
                "template": _ray_pod(cluster, group.get("resources"), settings, head=False),
            }
            for group in spec.get("workerGroups") or []
        ],
    }
    if spec.get("idleTimeoutSeconds"):
        ray["enableInTreeAutoscaling"] = True
        ray["autoscalerOptions"] = {
            "idleTimeoutSeconds": int(spec["idleTimeoutSeconds"]),
            "env": _ray_env(cluster),
        }
    return [
        _token_secret(cluster, token),
        *network_policy(cluster, settings, peers=True),
        {
            "apiVersion": "ray.io/v1",
            "kind": "RayCluster",
            "metadata": _meta(cluster, child_name("MLCluster", cluster["metadata"]["name"])),
            "spec": ray,
        },
    ]
