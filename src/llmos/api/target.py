"""What a resource path names, and whether the caller may act on it.

``/apis/{group}/{version}[/namespaces/{ns}]/{plural}[/{name}[/status]]`` becomes
a :class:`Target`; :func:`authorize` checks one verb on it against RBAC. The
resource routes and the dashboard's watch multiplexer both resolve paths here.
"""

from __future__ import annotations

from dataclasses import dataclass

from llmos._lib.errors import LLMOSError, Reason
from llmos.api.state import AppState
from llmos.auth.errors import forbidden
from llmos.auth.rbac import Principal
from llmos.auth.rbac import Request as AuthzRequest
from llmos.resources.registry import KindInfo


@dataclass(frozen=True)
class Target:
    info: KindInfo
    namespace: str | None
    name: str | None
    status: bool


def not_found(path: str) -> LLMOSError:
    return LLMOSError(
        f"no such path: {path}. Kinds are listed at /apis/{{group}}/{{version}}",
        Reason.NOT_FOUND,
    )


def resolve(state: AppState, group: str, version: str, rest: list[str], path: str) -> Target:
    registry = state.registry
    if len(rest) >= 3 and rest[0] == "namespaces":
        info = registry.by_path(group, version, rest[2])
        if info is not None and info.namespaced and len(rest) <= 5:
            if len(rest) == 5 and rest[4] != "status":
                raise not_found(path)
            name = rest[3] if len(rest) >= 4 else None
            return Target(info, rest[1], name, len(rest) == 5)
    info = registry.by_path(group, version, rest[0])
    if info is None:
        unknown = rest[2] if len(rest) >= 3 and rest[0] == "namespaces" else rest[0]
        raise LLMOSError(
            f"the server has no resource {unknown!r} in {group}/{version}: "
            f"see GET /apis/{group}/{version} for the kinds it serves",
            Reason.NOT_FOUND,
        )
    if len(rest) > 3 or (len(rest) == 3 and rest[2] != "status"):
        raise not_found(path)
    name = rest[1] if len(rest) >= 2 else None
    if info.namespaced and name is not None:
        raise LLMOSError(
            f"{info.kind} is namespaced: use /apis/{group}/{version}/namespaces/NAMESPACE/"
            f"{info.plural}/{name}",
            Reason.NOT_FOUND,
        )
    return Target(info, None, name, len(rest) == 3)


def authorize(state: AppState, who: Principal, verb: str, target: Target) -> None:
    info = target.info
    resource = f"{info.plural}/status" if target.status else info.plural
    req = AuthzRequest(verb, info.group, resource, target.namespace, target.name)
    if not state.auth.authorizer.allows(who, req, info.namespaced):
        where = f" in namespace {target.namespace!r}" if target.namespace else ""
        what = f"{info.plural} {target.name!r}" if target.name else info.plural
        grant = (
            f" (an admin can give a role there: `llmos users grant {who.user} {target.namespace}`)"
            if target.namespace and info.group == "ml.llmos.ai"
            else ""
        )
        raise forbidden(f"user {who.user!r} may not {verb} {what}{where}{grant}")
