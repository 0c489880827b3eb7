"""Workload logs as plain text lines: a ModelService replica's, a Notebook's and a Ray node's.

``GET /apis/ml.llmos.ai/v1/namespaces/{ns}/{plural}/{name}/logs`` with ``follow`` and
``tailLines``; a ModelService's also ``replica`` (from 0), an MLCluster's ``node``
(``head``, the default, or a worker as ``GROUP-INDEX``, e.g. ``cpu-0``). RBAC checks
``get`` on ``{plural}/logs``.

Embedded mode reads the process log on this node, which outlives the process's
restarts and stops (a ModelService scaled to 0, a stopped or culled Notebook, a
removed Ray worker) until the workload is deleted. Cluster mode reads a ModelService's
or Notebook's pod (``ms-NAME-REPLICA``, ``nb-NAME-0``) through the Kubernetes API;
an MLCluster's nodes are KubeRay's pods there, which ``kubectl logs`` reads.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from fastapi import APIRouter, Depends, Request
from starlette.responses import Response, StreamingResponse

from llmos._lib.errors import LLMOSError, Reason
from llmos.api.security import principal
from llmos.api.state import AppState, app_state
from llmos.auth.errors import forbidden
from llmos.auth.rbac import Principal
from llmos.auth.rbac import Request as AuthzRequest
from llmos.controllers import mlcluster, model_replica, notebook

router = APIRouter()

ML = "ml.llmos.ai"
_TEXT = "text/plain; charset=utf-8"


@router.get("/apis/ml.llmos.ai/v1/namespaces/{namespace}/modelservices/{name}/logs")
async def modelservice_logs(
    request: Request,
    namespace: str,
    name: str,
    follow: bool = False,
    tailLines: int | None = None,
    replica: int = 0,
    who: Principal = Depends(principal),
) -> Response:
    state = app_state(request)
    ms = await _readable(state, who, "modelservices", namespace, name, tailLines)
    if state.workload_runtime is not None:
        if ms["spec"].get("endpoint"):
            raise LLMOSError(
                f"ModelService {name!r} routes to an external endpoint: it has no replicas "
                "and no logs here",
                Reason.NOT_FOUND,
            )
        # Cluster mode: the pod's log through the Kubernetes API, opened before answering.
        found = await state.workload_runtime.logs(ms, replica, follow=follow, tail=tailLines)
        return StreamingResponse(_lines(found), media_type=_TEXT)
    return _local(
        state,
        model_replica.replica_key(namespace, name, replica),
        f"ModelService {name!r} has no replica {replica} on this node, and no log of one",
        follow,
        tailLines,
    )


@router.get("/apis/ml.llmos.ai/v1/namespaces/{namespace}/notebooks/{name}/logs")
async def notebook_logs(
    request: Request,
    namespace: str,
    name: str,
    follow: bool = False,
    tailLines: int | None = None,
    who: Principal = Depends(principal),
) -> Response:
    state = app_state(request)
    obj = await _readable(state, who, "notebooks", namespace, name, tailLines)
    if state.workload_runtime is not None:
        found = await state.workload_runtime.logs(obj, 0, follow=follow, tail=tailLines)
        return StreamingResponse(_lines(found), media_type=_TEXT)
    return _local(
        state,
        notebook.replica_key(namespace, name),
        f"Notebook {name!r} has not started on this node yet: it has no log",
        follow,
        tailLines,
    )


@router.get("/apis/ml.llmos.ai/v1/namespaces/{namespace}/mlclusters/{name}/logs")
async def mlcluster_logs(
    request: Request,
    namespace: str,
    name: str,
    follow: bool = False,
    tailLines: int | None = None,
    node: str = "head",
    who: Principal = Depends(principal),
) -> Response:
    state = app_state(request)
    await _readable(state, who, "mlclusters", namespace, name, tailLines)
    if state.workload_runtime is not None:
        raise LLMOSError(
            f"in cluster mode MLCluster {name!r}'s Ray nodes are KubeRay's pods: read them "
            f"with `kubectl logs -n {namespace} -l ray.io/cluster=...`",
            Reason.BAD_REQUEST,
        )
    prefix = mlcluster.cluster_prefix(namespace, name)
    if "/" in node or not node:
        raise LLMOSError(f"node {node!r}: use head or a worker as GROUP-INDEX", Reason.BAD_REQUEST)
    known = (
        sorted(k.removeprefix(prefix) for k in state.runtime.keys(prefix)) if state.runtime else []
    )
    return _local(
        state,
        prefix + node,
        f"MLCluster {name!r} has no Ray node {node!r} on this node, and no log of one "
        f"(its nodes now: {', '.join(known) or 'none'})",
        follow,
        tailLines,
    )


async def _readable(
    state: AppState,
    who: Principal,
    plural: str,
    namespace: str,
    name: str,
    tail: int | None,
) -> dict[str, Any]:
    """The workload whose logs ``who`` asks for, once RBAC allows ``get`` on its logs."""
    req = AuthzRequest("get", ML, f"{plural}/logs", namespace, name)
    if not state.auth.authorizer.allows(who, req, True):
        raise forbidden(
            f"user {who.user!r} may not read logs of {plural} {name!r} in {namespace!r}"
        )
    obj: dict[str, Any] = await state.store.get(f"{plural}.{ML}", namespace, name)
    if tail is not None and tail < 0:
        raise LLMOSError("tailLines must be 0 or more", Reason.BAD_REQUEST)
    return obj


def _local(state: AppState, key: str, missing: str, follow: bool, tail: int | None) -> Response:
    """Embedded mode: the log of the replica ``key`` on this node, live or kept after it."""
    if state.runtime is None:
        raise LLMOSError(missing, Reason.NOT_FOUND)
    try:
        found = state.runtime.logs(key, follow=follow, tail=tail)
    except LLMOSError as exc:
        if exc.reason != Reason.NOT_FOUND:
            raise
        raise LLMOSError(missing, Reason.NOT_FOUND) from exc
    return StreamingResponse(_lines(found), media_type=_TEXT)


async def _lines(found: AsyncIterator[str]) -> AsyncIterator[bytes]:
    async for line in found:
        yield (line.rstrip("\n") + "\n").encode()
