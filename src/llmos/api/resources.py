"""Generic REST routes for every kind, on Kubernetes' paths.

``/apis/{group}/{version}[/namespaces/{ns}]/{plural}[/{name}[/status]]``.
Handlers are thin: parse the path, check RBAC, run admission, call the store.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import orjson
import yaml
from fastapi import APIRouter, Depends, Request
from starlette.responses import Response

from llmos._lib.errors import Cause, LLMOSError, Reason
from llmos.api import body as bodies
from llmos.api import discovery
from llmos.api.admission import Admission
from llmos.api.security import principal
from llmos.api.state import AppState, app_state
from llmos.api.watch import BOOKMARK_SECONDS, stream_response
from llmos.auth.errors import forbidden
from llmos.auth.rbac import Principal
from llmos.auth.rbac import Request as AuthzRequest
from llmos.resources.registry import KindInfo
from llmos.resources.validation import validate_object
from llmos.store.base import WatchEvent
from llmos.store.selector import parse_selector

router = APIRouter()
MAX_LIMIT = 100_000


@dataclass(frozen=True)
class Target:
    info: KindInfo
    namespace: str | None
    name: str | None
    status: bool


def _not_found(path: str) -> LLMOSError:
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
                raise _not_found(path)
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
        raise _not_found(path)
    name = rest[1] if len(rest) >= 2 else None
    if info.namespaced and name is not None:
        raise LLMOSError(
            f"{info.kind} is namespaced: use /apis/{group}/{version}/namespaces/NAMESPACE/"
            f"{info.plural}/{name}",
            Reason.NOT_FOUND,
        )
    return Target(info, None, name, len(rest) == 3)


def _authorize(state: AppState, who: Principal, verb: str, target: Target) -> None:
    info = target.info
    resource = f"{info.plural}/status" if target.status else info.plural
    req = AuthzRequest(verb, info.group, resource, target.namespace, target.name)
    if not state.auth.authorizer.allows(who, req, info.namespaced):
        where = f" in namespace {target.namespace!r}" if target.namespace else ""
        what = f"{info.plural} {target.name!r}" if target.name else info.plural
        raise forbidden(f"user {who.user!r} may not {verb} {what}{where}")


def _wants_yaml(request: Request) -> bool:
    accept = request.headers.get("accept", "")
    return "yaml" in accept and "json" not in accept


def _respond(request: Request, obj: Any, code: int = 200) -> Response:
    if _wants_yaml(request):
        text = yaml.safe_dump(obj if not isinstance(obj, str) else orjson.loads(obj))
        return Response(text, code, media_type="application/yaml")
    payload = obj.encode() if isinstance(obj, str) else orjson.dumps(obj)
    return Response(payload, code, media_type="application/json")


def _int_param(request: Request, name: str) -> int | None:
    value = request.query_params.get(name)
    if value in (None, ""):
        return None
    if not value.lstrip("-").isdigit() or int(value) < 0:
        raise LLMOSError(
            f"query parameter {name}={value!r} must be a whole number of 0 or more",
            Reason.BAD_REQUEST,
        )
    return int(value)


def _visible(
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
            _authorize(state, who, verb, t)
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
    scoped, cluster_names = _visible(state, who, t, "watch")
    events = await state.store.watch(
        t.info.resource,
        t.namespace if t.info.namespaced else None,
        resource_version=resource_version or None,
        selector=selector,
        namespaces=scoped,
        bookmark_interval=BOOKMARK_SECONDS,
    )
    return _only_names(events, cluster_names) if cluster_names is not None else events


async def _list_or_watch(request: Request, state: AppState, who: Principal, t: Target) -> Response:
    info = t.info
    selector = parse_selector(request.query_params.get("labelSelector"))
    if request.query_params.get("watch") in ("true", "1"):
        rv = _int_param(request, "resourceVersion")
        timeout = _int_param(request, "timeoutSeconds")
        bookmarks = request.query_params.get("allowWatchBookmarks") in ("true", "1")
        events = await open_watch(state, who, t, rv, selector)
        return stream_response(info, events, timeout, bookmarks)
    scoped, cluster_names = _visible(state, who, t, "list")
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
    return _respond(request, text)


async def _only_names(events: Any, names: set[str]) -> Any:
    async for event in events:
        if event.type == "BOOKMARK" or event.name in names:
            yield event


async def _body_object(request: Request, t: Target) -> dict[str, Any]:
    obj = await bodies.read(request)
    if not isinstance(obj, dict):
        raise LLMOSError(
            f"the body must be a {t.info.kind} object (a mapping), not {type(obj).__name__}",
            Reason.BAD_REQUEST,
        )
    return obj


def _place(t: Target, obj: dict[str, Any]) -> None:
    """Make the body's namespace and name agree with the URL, or refuse."""
    meta = obj.setdefault("metadata", {})
    if not isinstance(meta, dict):
        raise LLMOSError(
            "metadata must be a mapping", Reason.INVALID, causes=[Cause("metadata", "")]
        )
    if t.info.namespaced:
        sent = meta.get("namespace")
        if sent and sent != t.namespace:
            message = (
                f"metadata.namespace {sent!r} does not match the namespace in the URL "
                f"{t.namespace!r}"
            )
            raise LLMOSError(message, Reason.BAD_REQUEST, causes=[Cause("metadata.namespace", "")])
        meta["namespace"] = t.namespace
    elif meta.get("namespace"):
        raise LLMOSError(
            f"{t.info.kind} is cluster-scoped: remove metadata.namespace",
            Reason.BAD_REQUEST,
            causes=[Cause("metadata.namespace", "not allowed")],
        )
    if t.name is not None:
        if meta.get("name") and meta["name"] != t.name:
            raise LLMOSError(
                f"metadata.name {meta['name']!r} does not match the name in the URL {t.name!r}",
                Reason.BAD_REQUEST,
                causes=[Cause("metadata.name", "")],
            )
        meta["name"] = t.name


async def _create(request: Request, state: AppState, who: Principal, t: Target) -> Response:
    if t.info.namespaced and t.namespace is None:
        raise LLMOSError(
            f"{t.info.kind} is namespaced: POST to /apis/{t.info.api_version}/namespaces/"
            f"NAMESPACE/{t.info.plural}",
            Reason.METHOD_NOT_ALLOWED,
        )
    obj = await _body_object(request, t)
    _place(t, obj)
    _authorize(
        state, who, "create", Target(t.info, t.namespace, obj["metadata"].get("name"), False)
    )
    obj = validate_object(t.info, obj)
    obj.pop("status", None)
    admission = Admission(state.store, state.auth)
    admitted = await admission.admit(t.info, obj, who, creating=True)
    if _dry_run(request):
        await _refuse_existing(state, t.info, admitted.obj)
        return _respond(request, admitted.obj, 200)
    created = await state.store.create(t.info.resource, admitted.obj, secret=admitted.secret)
    await _sync_auth(state, t.info, created)
    for extra in admitted.after_create:
        # Objects the server makes on the caller's behalf, e.g. the owner binding of a
        # namespace a user creates: admitted like any write, but not subject to RBAC.
        kind = state.registry.by_kind(extra["kind"])
        if kind is None:
            continue
        follow = await admission.admit(kind, validate_object(kind, extra), who, creating=True)
        made = await state.store.create(kind.resource, follow.obj, secret=follow.secret)
        await _sync_auth(state, kind, made)
    return _respond(request, created, 201)


def _dry_run(request: Request) -> bool:
    """``?dryRun=All``: validate and admit as for real, store nothing (forms use it)."""
    value = request.query_params.get("dryRun")
    if value is None:
        return False
    if value != "All":
        raise LLMOSError(f"dryRun must be 'All', not {value!r}", Reason.BAD_REQUEST)
    return True


async def _refuse_existing(state: AppState, info: KindInfo, obj: dict[str, Any]) -> None:
    meta = obj["metadata"]
    if not meta.get("name"):
        return  # generateName: the real create picks a free name
    try:
        await state.store.get(info.resource, meta.get("namespace") or "", meta["name"])
    except LLMOSError as exc:
        if exc.reason == Reason.NOT_FOUND:
            return
        raise
    raise LLMOSError(
        f'{info.plural} "{meta["name"]}" already exists',
        Reason.ALREADY_EXISTS,
        kind=info.kind,
        name=meta["name"],
        causes=[Cause("metadata.name", "already exists")],
    )


async def _sync_auth(state: AppState, info: KindInfo, obj: dict[str, Any]) -> None:
    """Let RBAC and login see a write to their kinds before the response goes out."""
    for informer in state.auth.informers:
        if informer.resource == info.resource:
            await informer.wait_for(int(obj["metadata"].get("resourceVersion") or 0))


async def _update(
    request: Request, state: AppState, who: Principal, t: Target, verb: str
) -> Response:
    if t.name is None:
        raise LLMOSError(f"{verb} needs a name in the URL", Reason.METHOD_NOT_ALLOWED)
    _authorize(state, who, verb, t)
    sent = await _body_object(request, t)
    for _attempt in range(5):
        pinned = (sent.get("metadata") or {}).get("resourceVersion")
        if verb == "patch" or t.status:
            current = await state.store.get(t.info.resource, t.namespace or "", t.name)
            if verb == "patch":
                wanted = bodies.merge_patch(current, sent)
            else:
                wanted = {**current, "status": sent.get("status") or {}}
            wanted["metadata"] = dict(wanted.get("metadata") or {})
            wanted["metadata"]["resourceVersion"] = pinned or (
                current["metadata"]["resourceVersion"] if verb == "patch" else None
            )
        else:
            wanted = dict(sent)
        _place(t, wanted)
        rv = (wanted.get("metadata") or {}).get("resourceVersion")
        obj = validate_object(t.info, wanted)
        if rv:
            obj["metadata"]["resourceVersion"] = rv
        try:
            if t.status:
                saved = await state.store.update_status(t.info.resource, obj)
            else:
                admitted = await Admission(state.store, state.auth).admit(
                    t.info, obj, who, creating=False
                )
                saved = await state.store.update(
                    t.info.resource, admitted.obj, secret=admitted.secret
                )
        except LLMOSError as exc:
            # A patch the client did not pin to a version is retried on a race.
            if exc.reason == Reason.CONFLICT and verb == "patch" and not pinned:
                continue
            raise
        await _sync_auth(state, t.info, saved)
        return _respond(request, saved)
    raise LLMOSError("the object kept changing; retry the patch", Reason.CONFLICT)


async def _delete(request: Request, state: AppState, who: Principal, t: Target) -> Response:
    if t.name is None or t.status:
        raise LLMOSError("delete needs an object name in the URL", Reason.METHOD_NOT_ALLOWED)
    _authorize(state, who, "delete", t)
    await Admission(state.store, state.auth).admit_delete(t.info, t.name, who)
    precondition = request.query_params.get("resourceVersion") or None
    raw = await request.body()
    if raw.strip():
        options = bodies.parse(raw, request.headers.get("content-type", ""))
        if isinstance(options, dict):
            precondition = (options.get("preconditions") or {}).get(
                "resourceVersion"
            ) or precondition
    deleted = await state.store.delete(
        t.info.resource, t.namespace or "", t.name, resource_version=precondition
    )
    await _sync_auth(state, t.info, deleted)
    return _respond(request, deleted)


@router.get("/apis", include_in_schema=False)
async def api_groups(request: Request, who: Principal = Depends(principal)) -> Response:
    return _respond(request, discovery.group_list(app_state(request).registry))


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
            raise _not_found(request.url.path)
        return _respond(request, listing)
    target = resolve(state, group, version, parts, request.url.path)
    method = request.method
    if method == "GET":
        if target.name is None:
            return await _list_or_watch(request, state, who, target)
        _authorize(state, who, "get", target)
        raw = await state.store.get_raw(target.info.resource, target.namespace or "", target.name)
        return _respond(request, raw)
    if method == "POST":
        if target.name is not None:
            raise LLMOSError(
                f"POST creates: send it to the collection, without the name {target.name!r}",
                Reason.METHOD_NOT_ALLOWED,
            )
        return await _create(request, state, who, target)
    if method == "PUT":
        return await _update(request, state, who, target, "update")
    if method == "PATCH":
        media = request.headers.get("content-type", "").split(";")[0].strip()
        if media == "application/json-patch+json":
            raise LLMOSError(
                "JSON Patch is not supported: send a merge patch "
                "(Content-Type: application/merge-patch+json)",
                Reason.UNSUPPORTED_MEDIA_TYPE,
            )
        return await _update(request, state, who, target, "patch")
    return await _delete(request, state, who, target)


@router.get("/apis/{group}/{version}", include_in_schema=False)
async def api_resources(
    request: Request, group: str, version: str, who: Principal = Depends(principal)
) -> Response:
    listing = discovery.resource_list(app_state(request).registry, group, version)
    if listing is None:
        raise _not_found(request.url.path)
    return _respond(request, listing)


@router.get("/apis/{group}", include_in_schema=False)
async def api_group(request: Request, group: str, who: Principal = Depends(principal)) -> Response:
    registry = app_state(request).registry
    if group not in registry.groups():
        raise _not_found(request.url.path)
    return _respond(request, discovery.group(registry, group))
