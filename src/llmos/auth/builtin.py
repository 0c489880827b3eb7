"""Built-in global roles, role templates, namespaces and settings."""

from __future__ import annotations

import os
from typing import Any

from llmos import __version__

READ = ["get", "list", "watch"]
ML = "ml.llmos.ai"
MGMT = "management.llmos.ai"
NODE = "node.llmos.ai"

SYSTEM_NAMESPACE = "llmos-system"
PUBLIC_NAMESPACE = "llmos-public"
DEFAULT_NAMESPACE = "default"
RESERVED_NAMESPACES = frozenset({SYSTEM_NAMESPACE, PUBLIC_NAMESPACE, DEFAULT_NAMESPACE})


def _rule(groups: list[str], resources: list[str], verbs: list[str]) -> dict[str, Any]:
    return {"apiGroups": groups, "resources": resources, "verbs": verbs}


GLOBAL_ROLES: dict[str, dict[str, Any]] = {
    "admin": {
        "displayName": "Administrator",
        "description": "Full control of everything, in every namespace.",
        "rules": [_rule(["*"], ["*"], ["*"])],
    },
    "user": {
        "displayName": "Standard user",
        "description": (
            "Can create namespaces (and owns those it creates), read nodes, settings and "
            "roles, and use whatever its namespace bindings allow."
        ),
        "rules": [
            _rule([MGMT], ["namespaces"], ["create"]),
            _rule([MGMT], ["settings", "globalroles", "roletemplates"], READ),
            _rule([NODE], ["nodes"], READ),
        ],
    },
}

ROLE_TEMPLATES: dict[str, dict[str, Any]] = {
    "namespace-owner": {
        "displayName": "Namespace owner",
        "description": "Everything inside the namespace, including who else may use it.",
        "rules": [_rule(["*"], ["*"], ["*"])],
    },
    "namespace-member": {
        "displayName": "Namespace member",
        "description": "Creates and manages workloads in the namespace; cannot grant access.",
        "rules": [
            _rule([ML], ["*"], ["*"]),
            _rule([MGMT], ["secrets"], ["*"]),
            _rule([NODE], ["events"], READ),
            _rule([MGMT], ["roletemplatebindings", "namespaces"], READ),
        ],
    },
    "namespace-readonly": {
        "displayName": "Namespace read-only",
        # No rule for secrets: a viewer does not even see which keys a Secret holds.
        "description": "Sees everything in the namespace but its Secrets; changes nothing.",
        "rules": [
            _rule([ML], ["*"], READ),
            _rule([NODE], ["events"], READ),
            _rule([MGMT], ["roletemplatebindings", "namespaces"], READ),
        ],
    },
}

SETTINGS: dict[str, tuple[str, str]] = {
    "server-url": ("", "The URL users and nodes reach this server at; set on first login."),
    "first-login": ("true", "Whether the first-login setup still has to run."),
    "auth-user-session-ttl-minutes": ("720", "How long a login session lasts, in minutes."),
    "password-min-length": ("12", "The shortest password a user may set."),
    "huggingface-endpoint": ("", "A Hugging Face mirror URL; empty means the official hub."),
    "modelscope-endpoint": (
        "https://www.modelscope.cn",
        "The ModelScope site models with modelRegistry: modelscope come from.",
    ),
    # Cluster mode (the Kubernetes runtime, docs/cluster.md).
    "kube-llmos-image": (
        # The image this server runs (the installer's Deployment says so), else this release's.
        os.environ.get("LLMOS_IMAGE") or f"ghcr.io/llmos-ai/llmos:v{__version__}",
        "Cluster mode: the LLMOS image (model fetching, the transformers engine).",
    ),
    "kube-vllm-image": ("vllm/vllm-openai:v0.11.0", "Cluster mode: the vLLM engine's image."),
    "kube-llama-cpp-image": (
        "ghcr.io/ggml-org/llama.cpp:server",
        "Cluster mode: the llama.cpp server image, for GGUF models.",
    ),
    "kube-jupyter-image": (
        "quay.io/jupyter/minimal-notebook:python-3.11",
        "Cluster mode: the image of Jupyter notebooks.",
    ),
    "kube-vscode-image": (
        "codercom/code-server:4.100.3",
        "Cluster mode: the image of VS Code notebooks.",
    ),
    "kube-ray-image": ("rayproject/ray:2.60.0", "Cluster mode: the Ray image of MLClusters."),
    "kube-storage-class": (
        "",
        "Cluster mode: the storage class of Volumes' PVCs; empty means the cluster default.",
    ),
    "kube-model-cache-path": (
        "/var/lib/llmos/models",
        "Cluster mode: the folder on each node where models are cached.",
    ),
    "kube-shm-size": ("8Gi", "Cluster mode: the size of /dev/shm in serving and Ray pods."),
    "kube-network-policies": (
        "true",
        "Cluster mode: let only the LLMOS server reach workload pods (NetworkPolicies).",
    ),
}
