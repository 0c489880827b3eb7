"""The Kubernetes objects that put LLMOS into a cluster, as plain dicts or one YAML stream.

``llmos install`` (to come) writes :func:`to_yaml` of :func:`manifests` into k3s'
auto-deploy folder on the first server; tests apply the same objects to the
fixture control plane. In order: the system namespace, the CRDs of every kind,
the server's RBAC, its Deployment (``llmos server --store kube`` as the
``llmos-server`` service account) and a Service that exposes 8443.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import yaml

from llmos import __version__
from llmos.install.crds import crds
from llmos.install.rbac import SERVICE_ACCOUNT, server_rbac

__all__ = ["ClusterOptions", "manifests", "to_yaml"]

APP = "llmos-server"
PORT = 8443


@dataclass(frozen=True)
class ClusterOptions:
    """What an installation may choose."""

    namespace: str = "llmos-system"
    """Where the server, its service account and the side secrets of cluster-scoped kinds live."""
    image: str = f"ghcr.io/llmos-ai/llmos:v{__version__}"
    """The LLMOS server image."""
    replicas: int = 1
    """Server replicas. Keep 1 until the server elects its controllers' leader."""
    service_type: str = "LoadBalancer"
    """How 8443 is exposed: k3s' ServiceLB answers on every node for LoadBalancer."""


def manifests(options: ClusterOptions | None = None) -> list[dict[str, Any]]:
    opts = options or ClusterOptions()
    labels = {"app.kubernetes.io/name": APP, "app.kubernetes.io/part-of": "llmos"}
    namespace = {
        "apiVersion": "v1",
        "kind": "Namespace",
        "metadata": {"name": opts.namespace, "labels": {"app.kubernetes.io/managed-by": "llmos"}},
    }
    return [
        namespace,
        *crds(),
        *server_rbac(opts.namespace),
        _deployment(opts, labels),
        _service(opts, labels),
    ]


def _deployment(opts: ClusterOptions, labels: dict[str, str]) -> dict[str, Any]:
    def probe(path: str, **extra: Any) -> dict[str, Any]:
        return {
            "httpGet": {"path": path, "port": PORT, "scheme": "HTTPS"},
            "periodSeconds": 5,
            **extra,
        }

    container = {
        "name": "server",
        "image": opts.image,
        "args": [
            "server",
            "--store=kube",
            f"--port={PORT}",
            "--data-dir=/var/lib/llmos",
            "--skip-preflight",  # preflight checks the host; a pod is not one
        ],
        "env": [
            {"name": "LLMOS_NODE_NAME", "valueFrom": {"fieldRef": {"fieldPath": "spec.nodeName"}}}
        ],
        "ports": [{"name": "https", "containerPort": PORT}],
        "readinessProbe": probe("/readyz"),
        "livenessProbe": probe("/healthz", failureThreshold=6),
        "resources": {"requests": {"cpu": "100m", "memory": "192Mi"}},
        "volumeMounts": [{"name": "data", "mountPath": "/var/lib/llmos"}],
        "securityContext": {"allowPrivilegeEscalation": False, "runAsNonRoot": True},
    }
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": APP, "namespace": opts.namespace, "labels": labels},
        "spec": {
            "replicas": opts.replicas,
            "selector": {"matchLabels": {"app.kubernetes.io/name": APP}},
            "template": {
                "metadata": {"labels": labels},
                "spec": {
                    "serviceAccountName": SERVICE_ACCOUNT,
                    "securityContext": {"runAsUser": 1000, "fsGroup": 1000},
                    "containers": [container],
                    "volumes": [{"name": "data", "emptyDir": {}}],
                },
            },
        },
    }


def _service(opts: ClusterOptions, labels: dict[str, str]) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": APP, "namespace": opts.namespace, "labels": labels},
        "spec": {
            "type": opts.service_type,
            "selector": {"app.kubernetes.io/name": APP},
            "ports": [{"name": "https", "port": PORT, "targetPort": "https"}],
        },
    }


def to_yaml(objects: list[dict[str, Any]]) -> str:
    """One multi-document YAML stream, as kubectl and k3s' auto-deploy read."""
    return yaml.safe_dump_all(objects, sort_keys=False)
