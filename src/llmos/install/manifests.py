"""The Kubernetes objects that put LLMOS into a cluster, as plain dicts or one YAML stream.

``llmos install`` (to come) writes :func:`to_yaml` of :func:`manifests` into k3s'
auto-deploy folder on the first server; tests apply the same objects to the
fixture control plane. In order: the system namespace, the CRDs of every kind,
the server's RBAC, with :class:`~llmos.install.secrets.ClusterSecrets` the
Secrets every replica shares (bootstrap admin password, CA and certificate,
join token), its Deployment (``llmos server --store kube`` as the
``llmos-server`` service account) and a Service that exposes 8443.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import yaml

from llmos import __version__
from llmos.install.crds import crds
from llmos.install.rbac import SERVICE_ACCOUNT, server_rbac
from llmos.install.secrets import ClusterSecrets

__all__ = [
    "APP",
    "BOOTSTRAP_SECRET",
    "TLS_SECRET",
    "TOKEN_SECRET",
    "ClusterOptions",
    "manifests",
    "to_yaml",
]

APP = "llmos-server"
PORT = 8443
BOOTSTRAP_SECRET = "llmos-bootstrap"  # key password: the admin's first password
TLS_SECRET = "llmos-tls"  # tls.crt, tls.key, ca.crt: one certificate for every replica
TOKEN_SECRET = "llmos-cluster-token"  # key token: what joining nodes show cluster-info
_TLS_DIR = "/etc/llmos/tls"
_TOKEN_DIR = "/etc/llmos/cluster"


@dataclass(frozen=True)
class ClusterOptions:
    """What an installation may choose."""

    namespace: str = "llmos-system"
    """Where the server, its service account and the side secrets of cluster-scoped kinds live."""
    image: str = f"ghcr.io/llmos-ai/llmos:v{__version__}"
    """The LLMOS server image."""
    replicas: int = 1
    """Server replicas: every one serves the API, the Lease holder runs the controllers.
    More than one needs the shared Secrets (``manifests(secrets=...)``)."""
    service_type: str = "LoadBalancer"
    """How 8443 is exposed: k3s' ServiceLB answers on every node for LoadBalancer."""


def manifests(
    options: ClusterOptions | None = None, secrets: ClusterSecrets | None = None
) -> list[dict[str, Any]]:
    """Every object, in the order to apply them.

    Without ``secrets`` each replica makes its own CA and admin password (one
    replica only, and no join handshake): what tests apply to a bare control plane.
    """
    opts = options or ClusterOptions()
    if secrets is None and opts.replicas > 1:
        raise ValueError("several server replicas need the shared Secrets: pass secrets=")
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
        *(_secrets(opts, secrets) if secrets else []),
        _deployment(opts, labels, shared=secrets is not None),
        _service(opts, labels),
    ]


def _secrets(opts: ClusterOptions, secrets: ClusterSecrets) -> list[dict[str, Any]]:
    def secret(name: str, data: dict[str, str], kind: str = "Opaque") -> dict[str, Any]:
        return {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {
                "name": name,
                "namespace": opts.namespace,
                "labels": {"app.kubernetes.io/part-of": "llmos"},
            },
            "type": kind,
            "stringData": data,
        }

    return [
        secret(BOOTSTRAP_SECRET, {"password": secrets.admin_password}),
        secret(
            TLS_SECRET,
            {"tls.crt": secrets.tls_cert, "tls.key": secrets.tls_key, "ca.crt": secrets.ca_cert},
            "kubernetes.io/tls",
        ),
        secret(TOKEN_SECRET, {"token": secrets.cluster_token}),
    ]


def _deployment(opts: ClusterOptions, labels: dict[str, str], *, shared: bool) -> dict[str, Any]:
    def probe(path: str, **extra: Any) -> dict[str, Any]:
        return {
            "httpGet": {"path": path, "port": PORT, "scheme": "HTTPS"},
            "periodSeconds": 5,
            **extra,
        }

    container: dict[str, Any] = {
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
            {"name": "LLMOS_NODE_NAME", "valueFrom": {"fieldRef": {"fieldPath": "spec.nodeName"}}},
            # The Kubernetes runtime's model-fetch init containers run the same image
            # (the kube-llmos-image Setting's default).
            {"name": "LLMOS_IMAGE", "value": opts.image},
        ],
        "ports": [{"name": "https", "containerPort": PORT}],
        "readinessProbe": probe("/readyz"),
        "livenessProbe": probe("/healthz", failureThreshold=6),
        "resources": {"requests": {"cpu": "100m", "memory": "192Mi"}},
        "volumeMounts": [{"name": "data", "mountPath": "/var/lib/llmos"}],
        "securityContext": {"allowPrivilegeEscalation": False, "runAsNonRoot": True},
    }
    volumes: list[dict[str, Any]] = [{"name": "data", "emptyDir": {}}]
    if shared:
        container["args"] += [
            f"--tls-cert={_TLS_DIR}/tls.crt",
            f"--tls-key={_TLS_DIR}/tls.key",
            f"--tls-ca={_TLS_DIR}/ca.crt",
            f"--cluster-token-file={_TOKEN_DIR}/token",
        ]
        container["env"].append(
            {
                "name": "LLMOS_BOOTSTRAP_PASSWORD",
                "valueFrom": {"secretKeyRef": {"name": BOOTSTRAP_SECRET, "key": "password"}},
            }
        )
        container["volumeMounts"] += [
            {"name": "tls", "mountPath": _TLS_DIR, "readOnly": True},
            {"name": "cluster-token", "mountPath": _TOKEN_DIR, "readOnly": True},
        ]
        # Readable by the pod's group (fsGroup) only.
        volumes += [
            {"name": "tls", "secret": {"secretName": TLS_SECRET, "defaultMode": 0o440}},
            {"name": "cluster-token", "secret": {"secretName": TOKEN_SECRET, "defaultMode": 0o440}},
        ]
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
                    "volumes": volumes,
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
