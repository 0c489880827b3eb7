"""The outermost ASGI app: ``/v1/*`` goes straight to the gateway, the rest to FastAPI.

The gateway is on the hot path, so it skips the framework entirely.
"""

from __future__ import annotations

from starlette.types import ASGIApp, Receive, Scope, Send


class Dispatch:
    def __init__(self, api: ASGIApp, gateway: ASGIApp) -> None:
        self.api = api
        self.gateway = gateway

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"].startswith("/v1/"):
            await self.gateway(scope, receive, send)
        else:
            await self.api(scope, receive, send)
