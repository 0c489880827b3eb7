"""The LLMOS server's ClusterRole: every CRD it stores objects in, two core kinds, Leases."""

from __future__ import annotations

from llmos.install.rbac import ROLE_NAME, server_rbac, server_role
from llmos.resources.registry import ALL_KINDS


def test_the_role_covers_every_kind_and_its_status() -> None:
    granted = {
        (group, resource)
        for rule in server_role()["rules"]
        for group in rule["apiGroups"]
        for resource in rule["resources"]
    }
    for info in ALL_KINDS:
        assert (info.group, info.kube_plural) in granted
        assert (info.group, f"{info.kube_plural}/status") in granted
    assert {"secrets", "namespaces", "nodes"} <= {res for group, res in granted if group == ""}
    nodes = next(
        rule
        for rule in server_role()["rules"]
        if rule["apiGroups"] == [""] and "nodes" in rule["resources"]
    )
    assert nodes["verbs"] == ["get", "list"], "the join handshake only reads them"
    assert ("coordination.k8s.io", "leases") in granted


def test_the_binding_names_the_service_account_or_the_given_subject() -> None:
    account, role, binding = server_rbac("llmos-system")
    assert (
        account["kind"] == "ServiceAccount" and account["metadata"]["namespace"] == "llmos-system"
    )
    assert role["metadata"]["name"] == binding["roleRef"]["name"] == ROLE_NAME
    assert binding["subjects"] == [
        {"kind": "ServiceAccount", "name": "llmos-server", "namespace": "llmos-system"}
    ]
    user = {"kind": "User", "name": "someone", "apiGroup": "rbac.authorization.k8s.io"}
    assert [o["kind"] for o in server_rbac("x", subject=user)] == [
        "ClusterRole",
        "ClusterRoleBinding",
    ]


def test_the_role_lets_the_kubernetes_runtime_manage_children_and_only_read_pods() -> None:
    verbs = {
        (group, resource): set(rule["verbs"])
        for rule in server_role()["rules"]
        for group in rule["apiGroups"]
        for resource in rule["resources"]
    }
    for child in [("apps", "statefulsets"), ("", "services"), ("", "persistentvolumeclaims")]:
        assert {"get", "list", "watch", "create", "patch", "delete"} <= verbs[child], child
    assert {"patch", "watch"} <= verbs[("ray.io", "rayclusters")]
    assert {"patch", "list", "delete"} <= verbs[("networking.k8s.io", "networkpolicies")]
    assert verbs[("", "pods")] == verbs[("", "pods/log")] == {"get", "list", "watch"}


def test_the_role_cannot_reach_the_kubelets() -> None:
    # nodes/proxy (even get: exec and attach start as GET upgrades) would let the server
    # run commands in any pod of the cluster; cluster mode does without it.
    resources = {r for rule in server_role()["rules"] for r in rule["resources"]}
    assert not {"nodes/proxy", "nodes/stats", "pods/exec", "pods/attach"} & resources
