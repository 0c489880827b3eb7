"""Which objects of a collection a caller may list or watch.

A namespaced kind listed across namespaces is scoped to the namespaces RBAC
allows; Namespaces themselves are filtered by name, so a user sees the ones
bound to them and ``llmos-public``. The resource routes and the dashboard's
watch multiplexer open watches here, so both filter alike.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from llmos.api.state import AppState
from llmos.api.target import Target, authorize
from llmos.api.watch import BOOKMARK_SECONDS
from llmos.auth.rbac import Principal
from llmos.auth.rbac import Request as AuthzRequest
from llmos.store.base import WatchEvent


def visible(
    state: AppState, who: Principal, t: Target, verb: str
) -> tuple[set[str] | None, set[str] | None]:
    """Authorize a list or watch; return (namespaces to scope it to, namespace names to
    keep when listing Namespaces themselves). None means no restriction."""
    info = t.info
    namespaces: set[str] | None = None
    if t.namespace is not None or not info.namespaced:
        if info.plural == "namespaces" and not info.namespaced:
            req = AuthzRequest(verb, info.group, info.plural)
            if not state.auth.authorizer.allows(who, req, False):
                namespaces = {
                    ns
                    for ns in state.auth.authorizer.bound_namespaces(who) | {"llmos-public"}
                    if state.auth.authorizer.allows(
                        who, AuthzRequest("get", info.group, "namespaces", None, ns), False
                    )
                }
        else:
            authorize(state, who, verb, t)
    else:
        req = AuthzRequest(verb, info.group, info.plural)
        namespaces = state.auth.authorizer.namespaces_allowed(who, req)
    if info.plural == "namespaces":
        return None, namespaces
    return namespaces, None


async def open_watch(
    state: AppState,
    who: Principal,
    t: Target,
    resource_version: int | None,
    selector: Any = None,
) -> AsyncIterator[WatchEvent]:
    """A watch of a collection, authorized and filtered as ``GET ...?watch=true`` is."""
    scoped, cluster_names = visible(state, who, t, "watch")
    events = await state.store.watch(
        t.info.resource,
        t.namespace if t.info.namespaced else None,
        resource_version=resource_version or None,
        selector=selector,
        namespaces=scoped,
        bookmark_interval=BOOKMARK_SECONDS,
    )
    return _only_names(events, cluster_names) if cluster_names is not None else events


async def _only_names(events: Any, names: set[str]) -> Any:
    async for event in events:
        if event.type == "BOOKMARK" or event.name in names:
            yield event
