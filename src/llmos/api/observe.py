"""Routes for watching workloads: ``/metrics`` (Prometheus) and metric history for charts.

Workload logs are :mod:`llmos.api.logs_routes`'.
"""

from __future__ import annotations

import asyncio
import ipaddress
from typing import Any

from fastapi import APIRouter, Depends, Request
from prometheus_client import CONTENT_TYPE_LATEST
from starlette.responses import Response

from llmos.api.security import principal
from llmos.api.state import app_state
from llmos.auth.errors import forbidden
from llmos.auth.rbac import Principal
from llmos.auth.rbac import Request as AuthzRequest

router = APIRouter()


def _allowed(request: Request, networks: list[str]) -> bool:
    if not networks or request.client is None:
        return False
    try:
        address = ipaddress.ip_address(request.client.host)
    except ValueError:
        return False
    return any(address in ipaddress.ip_network(n, strict=False) for n in networks)


@router.get("/metrics", include_in_schema=False)
async def metrics(request: Request) -> Response:
    """Prometheus text format, for an admin's token or an address in --metrics-allow-from."""
    state = app_state(request)
    if not _allowed(request, state.config.metrics_allow_from):
        who = await principal(request)
        if not who.is_admin:
            raise forbidden(
                "/metrics is for administrators (or an API key of one), or for the "
                "addresses in --metrics-allow-from"
            )
    # Collectors read /proc for every workload: keep that off the event loop.
    body = await asyncio.to_thread(state.exposition.render)
    return Response(body, media_type=CONTENT_TYPE_LATEST)


@router.get("/apis/node.llmos.ai/v1/gpudevices/{name}/metrics")
async def gpu_metrics(
    request: Request, name: str, who: Principal = Depends(principal)
) -> dict[str, Any]:
    """The last hour of one GPU's utilization, memory and temperature, for charts."""
    state = app_state(request)
    req = AuthzRequest("get", "node.llmos.ai", "gpudevices", None, name)
    if not state.auth.authorizer.allows(who, req, False):
        raise forbidden(f"user {who.user!r} may not get gpudevices {name!r}")
    await state.store.get("gpudevices.node.llmos.ai", "", name)
    history = state.history
    return {
        "gpu": name,
        "intervalSeconds": history.interval if history else None,
        "points": history.readings(name) if history else [],
    }


@router.get("/apis/ml.llmos.ai/v1/namespaces/{namespace}/modelservices/{name}/metrics")
async def modelservice_metrics(
    request: Request, namespace: str, name: str, who: Principal = Depends(principal)
) -> dict[str, Any]:
    """The last hour of gateway metrics of one ModelService, for the dashboard's charts."""
    state = app_state(request)
    req = AuthzRequest("get", "ml.llmos.ai", "modelservices", namespace, name)
    if not state.auth.authorizer.allows(who, req, True):
        raise forbidden(f"user {who.user!r} may not get modelservices {name!r} in {namespace!r}")
    ms = await state.store.get("modelservices.ml.llmos.ai", namespace, name)
    served = str(ms["spec"].get("servedModelName") or name)
    history = state.history
    return {
        "model": f"{namespace}/{served}",
        "intervalSeconds": history.interval if history else None,
        "points": history.series(f"{namespace}/{served}") if history else [],
    }
