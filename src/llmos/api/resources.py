"""Generic REST routes for every kind, on Kubernetes' paths.

``/apis/{group}/{version}[/namespaces/{ns}]/{plural}[/{name}[/status]]``, plus
discovery at ``/apis``, ``/apis/{group}`` and ``/apis/{group}/{version}``.
Handlers are thin: resolve the path (``target.py``), then read here (get, list,
watch, scoped by ``visibility.py``) or write (``writes.py``: RBAC, admission,
the store). ``app.py`` mounts the router.
"""

from __future__ import annotations

from typing import Any

import orjson
from fastapi import APIRouter, Depends, Request
from starlette.responses import Response

from llmos._lib.errors import LLMOSError, Reason
from llmos._lib.quantity import MAX_INT64, is_int64
from llmos.api import discovery, writes
from llmos.api.errors import media_type
from llmos.api.representation import respond
from llmos.api.security import principal
from llmos.api.state import AppState, app_state
from llmos.api.target import Target, authorize, not_found, resolve
from llmos.api.visibility import open_watch, visible
from llmos.api.watch import stream_response
from llmos.auth.rbac import Principal
from llmos.store.selector import parse_selector

router = APIRouter()
MAX_LIMIT = 100_000


def _int_param(request: Request, name: str) -> int | None:
    value = request.query_params.get(name)
    if value in (None, ""):
        return None
    if not is_int64(value):
        raise LLMOSError(
            f"query parameter {name}={value!r} must be a whole number from 0 to {MAX_INT64}",
            Reason.BAD_REQUEST,
        )
    return int(value)


async def _list_or_watch(request: Request, state: AppState, who: Principal, t: Target) -> Response:
    info = t.info
    selector = parse_selector(request.query_params.get("labelSelector"))
    if request.query_params.get("fieldSelector"):
        # Refused, not ignored: a list that ignored it would answer objects it excludes.
        raise LLMOSError(
            "fieldSelector is not supported: select by labelSelector, or GET one object by "
            "its name",
            Reason.BAD_REQUEST,
        )
    watch = request.query_params.get("watch", "")
    if watch not in ("true", "1", "false", "0", ""):
        raise LLMOSError(
            f"query parameter watch={watch!r} must be true or false", Reason.BAD_REQUEST
        )
    if watch in ("true", "1"):
        rv = _int_param(request, "resourceVersion")
        timeout = _int_param(request, "timeoutSeconds")
        bookmarks = request.query_params.get("allowWatchBookmarks") in ("true", "1")
        events = await open_watch(state, who, t, rv, selector)
        return stream_response(info, events, timeout, bookmarks)
    scoped, cluster_names = visible(state, who, t, "list")
    limit = _int_param(request, "limit")
    if limit is not None:
        limit = min(limit, MAX_LIMIT) or None
    page = await state.store.list(
        info.resource,
        t.namespace if info.namespaced else None,
        selector=selector,
        limit=limit,
        continue_token=request.query_params.get("continue") or None,
        namespaces=scoped,
    )
    items = page.raw_items
    if cluster_names is not None:
        items = [raw for raw in items if orjson.loads(raw)["metadata"]["name"] in cluster_names]
    meta: dict[str, Any] = {"resourceVersion": str(page.resource_version)}
    if page.continue_token:
        meta["continue"] = page.continue_token
    head = orjson.dumps(
        {"apiVersion": info.api_version, "kind": f"{info.kind}List", "metadata": meta}
    ).decode()
    text = f'{head[:-1]},"items":[{",".join(items)}]}}'
    return respond(request, text)


@router.get("/apis", include_in_schema=False)
async def api_groups(request: Request, who: Principal = Depends(principal)) -> Response:
    return respond(request, discovery.group_list(app_state(request).registry))


@router.api_route(
    "/apis/{group}/{version}/{rest:path}",
    methods=["GET", "POST", "PUT", "PATCH", "DELETE"],
    include_in_schema=False,
)
async def resources(
    request: Request, group: str, version: str, rest: str, who: Principal = Depends(principal)
) -> Response:
    state = app_state(request)
    parts = [p for p in rest.split("/") if p]
    if not parts:
        listing = discovery.resource_list(state.registry, group, version)
        if listing is None or request.method != "GET":
            raise not_found(request.url.path)
        return respond(request, listing)
    target = resolve(state, group, version, parts, request.url.path)
    method = request.method
    if method == "GET":
        if target.name is None:
            return await _list_or_watch(request, state, who, target)
        authorize(state, who, "get", target)
        raw = await state.store.get_raw(target.info.resource, target.namespace or "", target.name)
        return respond(request, raw)
    if method == "POST":
        if target.name is not None:
            raise LLMOSError(
                f"POST creates: send it to the collection, without the name {target.name!r}",
                Reason.METHOD_NOT_ALLOWED,
            )
        return await writes.create(request, state, who, target)
    if method == "PUT":
        return await writes.update(request, state, who, target, "update")
    if method == "PATCH":
        media = media_type(request.headers.get("content-type", ""))
        if media in ("application/strategic-merge-patch+json", "application/apply-patch+yaml"):
            # As for Kubernetes' custom resources: `kubectl patch --type=merge` or `--type=json`.
            raise LLMOSError(
                f"{media} is not supported for LLMOS kinds: send a merge patch "
                "(Content-Type: application/merge-patch+json) or a JSON Patch "
                "(application/json-patch+json)",
                Reason.UNSUPPORTED_MEDIA_TYPE,
            )
        json_patch = media == "application/json-patch+json"
        return await writes.update(request, state, who, target, "patch", json_patch=json_patch)
    return await writes.delete(request, state, who, target)


@router.get("/apis/{group}/{version}", include_in_schema=False)
async def api_resources(
    request: Request, group: str, version: str, who: Principal = Depends(principal)
) -> Response:
    listing = discovery.resource_list(app_state(request).registry, group, version)
    if listing is None:
        raise not_found(request.url.path)
    return respond(request, listing)


@router.get("/apis/{group}", include_in_schema=False)
async def api_group(request: Request, group: str, who: Principal = Depends(principal)) -> Response:
    registry = app_state(request).registry
    if group not in registry.groups():
        raise not_found(request.url.path)
    return respond(request, discovery.group(registry, group))
