"""Kubernetes-style discovery: ``/apis``, ``/apis/{group}`` and ``/apis/{group}/{version}``.

Clients (our CLI, kubectl-minded scripts) learn kinds, plurals, short names
and verbs from here instead of hard-coding them.
"""

from __future__ import annotations

from typing import Any

from llmos.resources.registry import Registry

VERBS = ["create", "delete", "get", "list", "patch", "update", "watch"]


def group_list(registry: Registry) -> dict[str, Any]:
    return {
        "kind": "APIGroupList",
        "apiVersion": "v1",
        "groups": [group(registry, name) for name in registry.groups()],
    }


def group(registry: Registry, name: str) -> dict[str, Any]:
    version = {"groupVersion": f"{name}/v1", "version": "v1"}
    return {
        "kind": "APIGroup",
        "apiVersion": "v1",
        "name": name,
        "versions": [version],
        "preferredVersion": version,
    }


def resource_list(registry: Registry, group_name: str, version: str) -> dict[str, Any] | None:
    kinds = [k for k in registry.groups().get(group_name, []) if k.version == version]
    if not kinds:
        return None
    resources: list[dict[str, Any]] = []
    for info in kinds:
        resources.append(
            {
                "name": info.plural,
                "singularName": info.singular,
                "namespaced": info.namespaced,
                "kind": info.kind,
                "verbs": VERBS,
                "shortNames": list(info.short_names),
            }
        )
        resources.append(
            {
                "name": f"{info.plural}/status",
                "singularName": "",
                "namespaced": info.namespaced,
                "kind": info.kind,
                "verbs": ["get", "patch", "update"],
            }
        )
    return {
        "kind": "APIResourceList",
        "apiVersion": "v1",
        "groupVersion": f"{group_name}/{version}",
        "resources": resources,
    }
