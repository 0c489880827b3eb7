"""``python -m llmos.engines.llama_server``: llama-cpp-python's server flags, LLMOS's additions."""

from __future__ import annotations

import argparse
import os

import uvicorn
from fastapi import FastAPI
from llama_cpp import Llama
from llama_cpp.server.app import create_app
from llama_cpp.server.cli import add_args_from_model, parse_model_from_args
from llama_cpp.server.settings import ModelSettings, ServerSettings, Settings
from starlette.responses import Response

from llmos.engines.llama_server.usage import AskedForUsage, install
from llmos.engines.quiet_probe import quiet

HEALTH = "/health"


def main() -> None:
    parser = argparse.ArgumentParser(description="llama.cpp behind LLMOS's gateway")
    add_args_from_model(parser, Settings)
    args = parser.parse_args()
    server: ServerSettings = parse_model_from_args(ServerSettings, args)  # type: ignore[assignment]
    model: ModelSettings = parse_model_from_args(ModelSettings, args)  # type: ignore[assignment]
    install(Llama)
    app: FastAPI = create_app(server_settings=server, model_settings=[model])
    # Loaded before it listens, so answering at all means ready; no model lock taken.
    app.add_api_route(HEALTH, lambda: Response(status_code=200), methods=["GET"])
    quiet(HEALTH)
    uvicorn.run(
        AskedForUsage(app),
        host=os.getenv("HOST", server.host),
        port=int(os.getenv("PORT", str(server.port))),
    )


if __name__ == "__main__":
    main()
