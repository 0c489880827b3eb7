"""LLMOS objects as custom resources: REST paths, what crosses over, and back.

A store *resource* (``modelservices.ml.llmos.ai``) is the name of its CRD (but for
Namespace, whose CRD is ``llmosnamespaces``: see ``KindInfo.kube_plural``), so a
path is the kind's group, version and CRD plural. What the API server adds that
LLMOS objects do not have (``managedFields``, ``deletionGracePeriodSeconds``) is
taken off on the way back, so an object read from this store validates like one
from the SQLite store.
"""

from __future__ import annotations

import base64
from typing import Any

import orjson

from llmos._lib.errors import Reason
from llmos.resources.registry import KIND_REGISTRY, KindInfo
from llmos.store.errors import StoreError
from llmos.store.selector import Selector

# Metadata the API server keeps for itself; an LLMOS ObjectMeta forbids these fields.
_SERVER_ONLY_META = ("managedFields", "selfLink", "deletionGracePeriodSeconds")
# Metadata a create must leave to the API server.
_ASSIGNED_META = ("uid", "resourceVersion", "generation", "creationTimestamp", "deletionTimestamp")
# Metadata an update may change (the rest is the server's).
MUTABLE_META = ("labels", "annotations", "finalizers", "ownerReferences")
_MAPS = ("labels", "annotations")  # of those, the maps (an empty one is {}, not [])


def kind_info(resource: str) -> KindInfo:
    info = KIND_REGISTRY.by_resource(resource)
    if info is None:
        raise StoreError(f"unknown resource {resource!r}", Reason.NOT_FOUND)
    return info


def path(info: KindInfo, namespace: str | None, name: str = "", sub: str = "") -> str:
    """``/apis/{group}/{version}[/namespaces/{ns}]/{plural}[/{name}[/{sub}]]``."""
    text = f"/apis/{info.group}/{info.version}"
    if info.namespaced and namespace:
        text += f"/namespaces/{namespace}"
    text += f"/{info.kube_plural}"
    if name:
        text += f"/{name}"
        if sub:
            text += f"/{sub}"
    return text


def clean(obj: dict[str, Any]) -> dict[str, Any]:
    """An object from the API server as LLMOS shows it (in place; returns it)."""
    meta = obj.get("metadata") or {}
    for key in _SERVER_ONLY_META:
        meta.pop(key, None)
    return obj


def for_create(obj: dict[str, Any]) -> dict[str, Any]:
    """A copy of a new object without what the API server assigns."""
    body = dict(obj)
    meta = dict(body.get("metadata") or {})
    for key in _ASSIGNED_META + _SERVER_ONLY_META:
        meta.pop(key, None)
    if meta.get("name"):
        meta.pop("generateName", None)
    body["metadata"] = meta
    return body


def dumps(obj: dict[str, Any]) -> str:
    return orjson.dumps(obj).decode()


def revision(obj: dict[str, Any]) -> int:
    return int((obj.get("metadata") or {}).get("resourceVersion") or 0)


def selector_text(selector: Selector | None) -> str | None:
    """A parsed label selector written back in Kubernetes syntax."""
    if not selector:
        return None
    parts = []
    for req in selector.requirements:
        if req.op == "exists":
            parts.append(req.key)
        elif req.op == "!exists":
            parts.append(f"!{req.key}")
        elif len(req.values) == 1:
            (value,) = req.values
            parts.append(f"{req.key}{'=' if req.op == 'in' else '!='}{value}")
        else:
            parts.append(f"{req.key} {req.op} ({','.join(sorted(req.values))})")
    return ",".join(parts)


def encode_continue(state: dict[str, Any]) -> str:
    """A continue token of our own (lists that span several namespaces)."""
    return "llmos:" + base64.urlsafe_b64encode(orjson.dumps(state)).decode()


def decode_continue(token: str) -> dict[str, Any] | None:
    """Our own token's state, or None for a Kubernetes continue token."""
    if not token.startswith("llmos:"):
        return None
    try:
        state: dict[str, Any] = orjson.loads(base64.urlsafe_b64decode(token[6:]))
    except (ValueError, orjson.JSONDecodeError) as exc:
        raise StoreError(
            f"continue token {token[:40]!r} is not valid: pass the 'continue' value of the "
            "previous page unchanged",
            Reason.BAD_REQUEST,
        ) from exc
    return state


def merged_update(
    current: dict[str, Any], sent: dict[str, Any], status_only: bool
) -> dict[str, Any]:
    """``current`` with what an update may change taken from ``sent`` (SQLite's rules)."""
    new = dict(current)
    new["metadata"] = dict(current["metadata"])
    if status_only:
        new["status"] = sent.get("status") or {}
        return new
    sent_meta = sent.get("metadata") or {}
    for key in MUTABLE_META:
        empty: dict[str, Any] | list[Any] = {} if key in _MAPS else []
        value = sent_meta.get(key) or empty
        if value or key in current["metadata"]:
            new["metadata"][key] = value
    if "spec" in sent:
        new["spec"] = sent["spec"]
    return new
