"""The Kubernetes RBAC that the LLMOS server needs in cluster mode, and no more.

The server keeps LLMOS objects as custom resources (``store.kube``), their side
secrets as Secrets, makes a Kubernetes namespace for each LLMOS namespace,
elects the replica that runs the controllers with a Lease, lists the
nodes for the join handshake, and records which nodes' model caches hold
which models in one ConfigMap (``runtime.kube.model_cache``).
:func:`server_rbac` returns the ServiceAccount, ClusterRole and
ClusterRoleBinding that allow exactly that; the installer applies them, and
tests bind the role to a plain user to prove it is enough.
"""

from __future__ import annotations

from typing import Any

from llmos.resources.registry import ALL_KINDS

# runtime.kube.model_cache's ConfigMap (install may not import the runtime: a sibling layer).
MODEL_CACHE_CONFIGMAP = "llmos-model-cache"

__all__ = ["ROLE_NAME", "SERVICE_ACCOUNT", "server_rbac", "server_role"]

ROLE_NAME = "llmos-server"
SERVICE_ACCOUNT = "llmos-server"
_LABELS = {"app.kubernetes.io/part-of": "llmos"}
_ALL = ["get", "list", "watch", "create", "update", "patch", "delete"]


def server_role() -> dict[str, Any]:
    """The ClusterRole of the LLMOS server."""
    groups: dict[str, list[str]] = {}
    for info in ALL_KINDS:
        groups.setdefault(info.group, []).extend([info.kube_plural, f"{info.kube_plural}/status"])
    rules: list[dict[str, Any]] = [
        {"apiGroups": [group], "resources": sorted(resources), "verbs": _ALL}
        for group, resources in sorted(groups.items())
    ]
    rules += [
        # The side secrets (password and token hashes) of LLMOS objects.
        {"apiGroups": [""], "resources": ["secrets"], "verbs": _ALL},
        # A Kubernetes namespace per LLMOS namespace, deleted with it.
        {"apiGroups": [""], "resources": ["namespaces"], "verbs": ["get", "create", "delete"]},
        # The join handshake (/v1-cluster/cluster-info) names the cluster's nodes.
        {"apiGroups": [""], "resources": ["nodes"], "verbs": ["get", "list"]},
        # The Kubernetes runtime (runtime.kube): the children of workloads, applied with
        # server-side apply and watched back; pods read (and their logs), never written.
        {
            "apiGroups": [""],
            "resources": ["services", "persistentvolumeclaims"],
            "verbs": _ALL,
        },
        {"apiGroups": [""], "resources": ["pods", "pods/log"], "verbs": ["get", "list", "watch"]},
        {"apiGroups": ["apps"], "resources": ["statefulsets"], "verbs": _ALL},
        {"apiGroups": ["ray.io"], "resources": ["rayclusters"], "verbs": _ALL},
        {"apiGroups": ["networking.k8s.io"], "resources": ["networkpolicies"], "verbs": _ALL},
        # Which nodes' model caches hold which models: that one ConfigMap, made and
        # changed by server-side apply (whose create the API server checks by name too).
        {
            "apiGroups": [""],
            "resources": ["configmaps"],
            "resourceNames": [MODEL_CACHE_CONFIGMAP],
            "verbs": ["create", "get", "patch"],
        },
        # Leader election of the controllers among server replicas.
        {
            "apiGroups": ["coordination.k8s.io"],
            "resources": ["leases"],
            "verbs": ["get", "create", "update"],
        },
    ]
    return {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "ClusterRole",
        "metadata": {"name": ROLE_NAME, "labels": _LABELS},
        "rules": rules,
    }


def server_rbac(namespace: str, subject: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    """ServiceAccount (in ``namespace``), ClusterRole and a binding of the role to it.

    ``subject`` binds the role to someone else instead (a test's static-token user).
    """
    who = subject or {"kind": "ServiceAccount", "name": SERVICE_ACCOUNT, "namespace": namespace}
    objects: list[dict[str, Any]] = []
    if subject is None:
        objects.append(
            {
                "apiVersion": "v1",
                "kind": "ServiceAccount",
                "metadata": {"name": SERVICE_ACCOUNT, "namespace": namespace, "labels": _LABELS},
            }
        )
    objects.append(server_role())
    objects.append(
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "ClusterRoleBinding",
            "metadata": {"name": ROLE_NAME, "labels": _LABELS},
            "roleRef": {
                "apiGroup": "rbac.authorization.k8s.io",
                "kind": "ClusterRole",
                "name": ROLE_NAME,
            },
            "subjects": [who],
        }
    )
    return objects
