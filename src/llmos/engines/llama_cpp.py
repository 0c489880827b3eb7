"""llama.cpp through ``llama-cpp-python[server]``: GGUF models on CPU or GPU."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import ClassVar

from llmos.engines.base import Engine, EngineContext, ModelFormat, Probe


class LlamaCppEngine(Engine):
    name: ClassVar[str] = "llama-cpp"
    # One of LLMOS's own dependencies, so missing only from a broken install.
    install: ClassVar[str] = "pip install 'llama-cpp-python[server]' (or scripts/setup)"
    modules: ClassVar[tuple[str, ...]] = ("llama_cpp", "sse_starlette", "starlette_context")
    formats: ClassVar[tuple[ModelFormat, ...]] = ("gguf",)
    # llama-cpp-python's server, with a lock-free /health and usage at the end of streams
    # that ask for it (llmos.engines.llama_server).
    health: ClassVar[Probe] = Probe("/health", startup_timeout_seconds=300)
    # Its settings are pydantic-settings: API_KEY in the environment is --api_key.
    key_env: ClassVar[str] = "API_KEY"

    @classmethod
    def refuses(cls, api: str, engine_args: Sequence[str]) -> str | None:
        if api == "/v1/embeddings" and not _switched_on(engine_args, "--embedding"):
            return (
                "it runs on llama.cpp without embeddings: serve an embedding model with "
                "engineArgs ['--embedding', 'true']"
            )
        return None

    def command(self, ctx: EngineContext) -> tuple[str, ...]:
        args = [
            sys.executable,
            "-P",  # the working dir may be a volume: none of its files stand in for modules
            "-m",
            "llmos.engines.llama_server",
            "--model",
            str(ctx.model.path),
            "--model_alias",
            ctx.served_name,
            "--host",
            "127.0.0.1",
            "--port",
            "{port}",
        ]
        given = set(ctx.engine_args)
        if "--interrupt_requests" not in given:
            # By default a new request aborts the stream in progress; queue them instead.
            args += ["--interrupt_requests", "False"]
        if "--n_ctx" not in given:
            args += ["--n_ctx", "4096"]
        if "--n_gpu_layers" not in given:
            # All layers on the GPU when one is allocated; a memory share smaller than
            # the model's estimate is held by offloading only the layers that fit.
            layers = -1 if ctx.gpu_layers is None else ctx.gpu_layers
            args += ["--n_gpu_layers", str(layers) if ctx.gpus else "0"]
        return (*args, *ctx.engine_args)


def _switched_on(args: Sequence[str], flag: str) -> bool:
    """Whether ``args`` turn on a llama-cpp-python boolean flag (``--flag true`` or ``--flag=1``)."""
    value = None
    for i, arg in enumerate(args):
        if arg == flag:
            value = args[i + 1] if i + 1 < len(args) else ""
        elif arg.startswith(flag + "="):
            value = arg.split("=", 1)[1]
    return value is not None and value.lower().strip() in ("1", "on", "t", "true", "y", "yes")
