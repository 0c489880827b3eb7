"""The outermost ASGI app: ``/v1/*`` to the gateway, workload proxies, the rest to FastAPI.

The gateway is on the hot path, so it skips the framework entirely; so do the
proxies to workloads (``/notebooks/...``), which carry HTTP and WebSockets.
A HEAD to the API is answered as its GET, without the body.
"""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from llmos.api.workload_proxy import WorkloadProxy


class Dispatch:
    def __init__(
        self, api: ASGIApp, gateway: ASGIApp, workloads: WorkloadProxy | None = None
    ) -> None:
        self.api = api
        self.gateway = gateway
        self.workloads = workloads

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"].startswith("/v1/"):
            await self.gateway(scope, receive, send)
        elif self.workloads is not None and self.workloads.handles(scope["path"]):
            await self.workloads(scope, receive, send)
        elif scope["type"] == "http" and scope["method"] == "HEAD":
            await self.api({**scope, "method": "GET"}, receive, _headers_only(send))
        else:
            await self.api(scope, receive, send)


def _headers_only(send: Send) -> Send:
    """HEAD as HTTP has it: a GET's status and headers (Content-Length too), no body."""

    async def headers_only(message: Message) -> None:
        if message["type"] == "http.response.body":
            message = {**message, "body": b""}
        await send(message)

    return headers_only
