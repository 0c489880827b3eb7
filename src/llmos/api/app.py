"""Builds the ASGI application: routes, error handlers, body limits, OpenAPI."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request
from starlette.responses import PlainTextResponse, Response

from llmos import __version__
from llmos.api import (
    auth_routes,
    cluster_info,
    dashboard,
    errors,
    logs_routes,
    observe,
    openapi,
    resources,
    watch_mux,
)
from llmos.api.body import BodyLimit
from llmos.api.state import AppState


def create_app(state: AppState) -> FastAPI:
    app = FastAPI(
        title="LLMOS",
        version=__version__,
        openapi_url=None,
        docs_url=None,
        redoc_url=None,
    )
    app.state.llmos = state
    errors.install(app)
    app.include_router(auth_routes.public)
    app.include_router(auth_routes.private)
    app.include_router(cluster_info.router)
    app.include_router(observe.router)
    app.include_router(logs_routes.router)
    app.include_router(watch_mux.router)
    app.include_router(resources.router)
    dashboard.install(app)

    @app.get("/healthz", include_in_schema=False)
    async def healthz() -> Response:
        return PlainTextResponse("ok")

    @app.get("/readyz", include_in_schema=False)
    async def readyz() -> Response:
        if state.ready:
            return PlainTextResponse("ok")
        return PlainTextResponse("starting", status_code=503)

    document: dict[str, Any] = {}

    @app.get("/openapi.json", include_in_schema=False)
    async def openapi_json(request: Request) -> dict[str, Any]:
        if not document:
            document.update(openapi.build(app, state.registry))
        return document

    app.add_middleware(BodyLimit, limit=state.config.max_request_bytes)
    return app
