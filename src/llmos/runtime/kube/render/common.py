"""What every child of an LLMOS object shares: names, labels, owner, resources, settings.

Also the children several kinds make alike: a Secret holding an object's own
token, and the NetworkPolicy that lets only the LLMOS server reach its pods.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

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
    modelscope_endpoint: str
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
            modelscope_endpoint=get("modelscope-endpoint"),
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
            "metadata": child_meta(obj, child_name(obj["kind"], obj["metadata"]["name"])),
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


def child_meta(obj: dict[str, Any], name: str, **extra: Any) -> dict[str, Any]:
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


def container_resources(spec: dict[str, Any] | None) -> dict[str, Any]:
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


def env_vars(items: list[dict[str, Any]] | None, **fixed: str) -> list[dict[str, Any]]:
    env = [{"name": k, "value": v} for k, v in fixed.items() if v]
    return env + [{"name": e["name"], "value": e.get("value", "")} for e in items or []]


def volume_mounts(
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


class Unsupported(ValueError):
    """Something an LLMOS object asks for that cluster mode does not offer (why)."""


def secret_name(obj: dict[str, Any]) -> str:
    """The Secret holding a Notebook's or an MLCluster's own token (key ``token``)."""
    return child_name(obj["kind"], obj["metadata"]["name"]) + "-token"


def token_secret(obj: dict[str, Any], token: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": child_meta(obj, secret_name(obj)),
        "type": "Opaque",
        "stringData": {"token": token},
    }


# The group the images' users belong to, so a fresh volume's files are theirs to write:
# Jupyter's docker-stacks (jovyan, gid 100), code-server (coder, 1000), Ray (ray, 100).
FS_GROUP = {"jupyter": 100, "vscode": 1000, "ray": 100}
