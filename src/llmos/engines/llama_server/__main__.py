"""``python -m llmos.engines.llama_server``: llama-cpp-python's server flags, LLMOS's additions."""

from __future__ import annotations

import argparse
import ctypes
import os
import sys

import llama_cpp
import llama_cpp._logger
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

# ggml_log_level as llama.cpp has it now (NONE, DEBUG, INFO, WARN, ERROR, CONT). DEBUG is
# thousands of lines per model load (each tensor, each graph input), which buried what the
# log is read for; CONT continues the line before it.
_DEBUG, _CONT = 1, 5
_last_level = 0


def _log_without_debug(level: int, text: bytes, _user_data: ctypes.c_void_p) -> None:
    global _last_level
    level = _last_level if level == _CONT else level
    _last_level = level
    if level != _DEBUG:
        print(text.decode("utf-8", "replace"), end="", flush=True, file=sys.stderr)


# The C callback (kept here: llama.cpp holds it, so it must not be collected).
_CALLBACK = llama_cpp.llama_log_callback(_log_without_debug)


def _quiet_debug() -> None:
    """Leave llama.cpp's debug lines out of the replica's log (LLMOS_LLAMA_DEBUG=1 keeps them)."""
    if os.environ.get("LLMOS_LLAMA_DEBUG") != "1":
        llama_cpp.llama_log_set(_CALLBACK, ctypes.c_void_p(0))


def main() -> None:
    parser = argparse.ArgumentParser(description="llama.cpp behind LLMOS's gateway")
    add_args_from_model(parser, Settings)
    args = parser.parse_args()
    server: ServerSettings = parse_model_from_args(ServerSettings, args)  # type: ignore[assignment]
    model: ModelSettings = parse_model_from_args(ModelSettings, args)  # type: ignore[assignment]
    install(Llama)
    _quiet_debug()
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
