"""Create, update, patch and delete of one object, for the resource routes.

Each write parses the body, makes its namespace and name agree with the URL,
checks RBAC, validates, runs admission and calls the store; then waits until
auth has seen the write, so the next request is judged by it.
"""

from __future__ import annotations

from typing import Any

from fastapi import Request
from starlette.responses import Response

from llmos._lib.errors import Cause, LLMOSError, Reason
from llmos.api import body as bodies
from llmos.api import dry_run
from llmos.api.admission import Admission
from llmos.api.representation import respond
from llmos.api.state import AppState
from llmos.api.target import Target, authorize
from llmos.auth.rbac import Principal
from llmos.resources.registry import KindInfo
from llmos.resources.validation import validate_object


async def _body_object(request: Request, t: Target) -> dict[str, Any]:
    obj = await bodies.read(request)
    if not isinstance(obj, dict):
        raise LLMOSError(
            f"the body must be a {t.info.kind} object (a mapping), not {type(obj).__name__}",
            Reason.BAD_REQUEST,
        )
    _body_meta(obj)
    return obj


def _body_meta(obj: dict[str, Any]) -> None:
    if not isinstance(obj.get("metadata", {}), dict):
        raise LLMOSError(
            "metadata must be a mapping", Reason.INVALID, causes=[Cause("metadata", "")]
        )


def _place(t: Target, obj: dict[str, Any]) -> None:
    """Make the body's namespace and name agree with the URL, or refuse."""
    meta = obj.setdefault("metadata", {})  # a mapping: _body_object saw to it
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


async def create(request: Request, state: AppState, who: Principal, t: Target) -> Response:
    if t.info.namespaced and t.namespace is None:
        raise LLMOSError(
            f"{t.info.kind} is namespaced: POST to /apis/{t.info.api_version}/namespaces/"
            f"NAMESPACE/{t.info.plural}",
            Reason.METHOD_NOT_ALLOWED,
        )
    dry = dry_run.requested(request)
    obj = await _body_object(request, t)
    _place(t, obj)
    authorize(state, who, "create", Target(t.info, t.namespace, obj["metadata"].get("name"), False))
    obj = validate_object(t.info, obj)
    obj.pop("status", None)
    obj["metadata"].pop("deletionTimestamp", None)  # the server's to set, by a delete
    admission = Admission(state.store, state.auth)
    admitted = await admission.admit(t.info, obj, who, creating=True)
    if dry:
        await dry_run.refuse_existing(state, t.info, admitted.obj)
        return respond(request, admitted.obj, 200)
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
    return respond(request, created, 201)


async def _sync_auth(state: AppState, info: KindInfo, obj: dict[str, Any]) -> None:
    """Let RBAC and login see a write to their kinds before the response goes out."""
    for informer in state.auth.informers:
        if informer.resource == info.resource:
            await informer.wait_for(int(obj["metadata"].get("resourceVersion") or 0))


async def update(
    request: Request,
    state: AppState,
    who: Principal,
    t: Target,
    verb: str,
    *,
    json_patch: bool = False,
) -> Response:
    """PUT (``update``) or PATCH (``patch``: a merge patch, or a JSON Patch if ``json_patch``)."""
    if t.name is None:
        raise LLMOSError(f"{verb} needs a name in the URL", Reason.METHOD_NOT_ALLOWED)
    authorize(state, who, verb, t)
    dry = dry_run.requested(request)
    operations = bodies.json_patch_operations(await bodies.read(request)) if json_patch else None
    sent = {} if json_patch else await _body_object(request, t)
    if t.status and not isinstance(sent.get("status", {}), dict):
        raise LLMOSError(
            "status must be a mapping", Reason.INVALID, causes=[Cause("status", "not a mapping")]
        )
    for _attempt in range(5):
        pinned = (sent.get("metadata") or {}).get("resourceVersion")
        if verb == "patch" or t.status:
            current = await state.store.get(t.info.resource, t.namespace or "", t.name)
            if operations is not None:
                wanted = bodies.json_patch(current, operations)
                _body_meta(wanted)
                # Pinned only where the patch itself names a version (not a test of it).
                rv = (wanted.get("metadata") or {}).get("resourceVersion")
                pinned = rv if rv != current["metadata"]["resourceVersion"] else None
            elif verb == "patch":
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
            if dry:  # validated and admitted as for real; the version is checked, nothing stored
                return respond(request, await _dry_update(state, t, obj, who))
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
        return respond(request, saved)
    raise LLMOSError("the object kept changing; retry the patch", Reason.CONFLICT)


async def delete(request: Request, state: AppState, who: Principal, t: Target) -> Response:
    if t.name is None or t.status:
        what = "the object, not its status" if t.status else "an object name in the URL"
        raise LLMOSError(f"delete needs {what}", Reason.METHOD_NOT_ALLOWED)
    authorize(state, who, "delete", t)
    dry = dry_run.requested(request)
    await Admission(state.store, state.auth).admit_delete(t.info, t.name, who)
    version, uid = await _delete_preconditions(request)
    if dry or uid:
        current = await state.store.get(t.info.resource, t.namespace or "", t.name)
        meta = current["metadata"]
        if uid and uid != meta.get("uid"):
            raise LLMOSError(
                f"{t.info.kind} {t.name!r} is not the one you meant: its uid is "
                f"{meta.get('uid')}, not {uid} (it was deleted and made again)",
                Reason.CONFLICT,
                kind=t.info.kind,
                name=t.name,
            )
        if dry:
            dry_run.check_version(t.info, current, version)
            return respond(request, current)
    deleted = await state.store.delete(
        t.info.resource, t.namespace or "", t.name, resource_version=version
    )
    await _sync_auth(state, t.info, deleted)
    return respond(request, deleted)


_PROPAGATION = ("Foreground", "Background", "Orphan")


async def _delete_preconditions(request: Request) -> tuple[str | None, str | None]:
    """The resourceVersion and uid a delete is conditional on, from ``?resourceVersion=`` and
    a DeleteOptions body; refuse options that are not DeleteOptions."""
    version = request.query_params.get("resourceVersion") or None
    raw = await request.body()
    if not raw.strip():
        return version, None
    options = bodies.parse(raw, request.headers.get("content-type", ""))
    if not isinstance(options, dict):
        raise LLMOSError(
            f"a delete's body must be DeleteOptions (a mapping), not {type(options).__name__}",
            Reason.BAD_REQUEST,
        )
    preconditions = options.get("preconditions") or {}
    if not isinstance(preconditions, dict):
        raise LLMOSError(
            "preconditions must be a mapping like {resourceVersion: ..., uid: ...}",
            Reason.BAD_REQUEST,
            causes=[Cause("preconditions", "not a mapping")],
        )
    policy = options.get("propagationPolicy")
    if policy is not None and policy not in _PROPAGATION:
        raise LLMOSError(
            f"propagationPolicy {policy!r}: use one of {', '.join(_PROPAGATION)}",
            Reason.BAD_REQUEST,
            causes=[Cause("propagationPolicy", "unknown")],
        )
    grace = options.get("gracePeriodSeconds")
    if grace is not None and (not isinstance(grace, int) or isinstance(grace, bool) or grace < 0):
        raise LLMOSError(
            f"gracePeriodSeconds {grace!r} must be a whole number, 0 or more",
            Reason.BAD_REQUEST,
            causes=[Cause("gracePeriodSeconds", "invalid")],
        )
    sent = preconditions.get("resourceVersion")
    uid = preconditions.get("uid")
    return (str(sent) if sent else version), (str(uid) if uid else None)


async def _dry_update(
    state: AppState, t: Target, obj: dict[str, Any], who: Principal
) -> dict[str, Any]:
    """What an update would store, for ``?dryRun=All``: admitted, version-checked, unsaved."""
    current = await state.store.get(t.info.resource, t.namespace or "", t.name or "")
    dry_run.check_version(t.info, current, obj["metadata"].get("resourceVersion"))
    if t.status:
        return {**current, "status": obj.get("status") or {}}
    admitted = await Admission(state.store, state.auth).admit(t.info, obj, who, creating=False)
    kept = ("uid", "creationTimestamp", "resourceVersion", "generation")
    meta = {**admitted.obj["metadata"], **{k: current["metadata"].get(k) for k in kept}}
    return {**admitted.obj, "metadata": meta}
