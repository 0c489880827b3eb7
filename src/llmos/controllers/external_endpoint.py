"""A ModelService whose ``spec.endpoint`` runs elsewhere: no replicas, Ready while the
endpoint answers ``GET /v1/models`` (both modes: embedded and cluster)."""

from __future__ import annotations

from typing import Any

from llmos.resources.meta import set_condition


async def probe_endpoint(url: str) -> str | None:
    """None if ``url`` answers ``GET /v1/models``, else why not."""
    import httpx

    try:
        async with httpx.AsyncClient(timeout=5, verify=True) as client:
            response = await client.get(f"{url}/v1/models")
    except httpx.HTTPError as exc:
        return f"{url} does not answer: {exc}"
    if response.status_code >= 400:
        return f"{url}/v1/models answered HTTP {response.status_code}"
    return None


async def external_status(
    ms: dict[str, Any], status: dict[str, Any], generation: int | None
) -> None:
    """``status`` of a ModelService that routes to ``spec.endpoint``: Ready while it answers."""
    url = str(ms["spec"]["endpoint"]).rstrip("/")
    problem = await probe_endpoint(url)
    status.update(replicas=1, engine="external", observedGeneration=generation)
    if problem:
        status.update(phase="Unavailable", message=problem, readyReplicas=0, endpoints=[])
        set_condition(status, "Ready", False, "EndpointUnavailable", problem, generation)
    else:
        message = f"routing to {url}"
        status.update(phase="Ready", message=message, readyReplicas=1, endpoints=[url])
        set_condition(status, "Ready", True, "EndpointAvailable", message, generation)
