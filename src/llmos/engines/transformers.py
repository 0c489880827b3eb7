"""Hugging Face transformers through LLMOS's small built-in OpenAI-compatible server.

For any causal LM (and embeddings) on CPU or GPU, where vLLM is absent or
overkill. The server itself is ``llmos.engines.hf_server``.
"""

from __future__ import annotations

import sys
from typing import ClassVar

from llmos.engines.base import Engine, EngineContext, ModelFormat, Probe


class TransformersEngine(Engine):
    name: ClassVar[str] = "transformers"
    extra: ClassVar[str] = "transformers"
    modules: ClassVar[tuple[str, ...]] = ("torch", "transformers")
    formats: ClassVar[tuple[ModelFormat, ...]] = ("safetensors",)
    health: ClassVar[Probe] = Probe("/health", startup_timeout_seconds=600)

    @classmethod
    def missing(cls) -> str | None:
        import importlib.util

        if importlib.util.find_spec("llmos.engines.hf_server") is None:
            return (
                "the transformers engine's built-in server is not part of this LLMOS "
                "version yet: use engine llama-cpp (GGUF) or vllm"
            )
        return super().missing()

    def command(self, ctx: EngineContext) -> tuple[str, ...]:
        args = [
            sys.executable,
            "-m",
            "llmos.engines.hf_server",
            "--model",
            str(ctx.model.path),
            "--served-model-name",
            ctx.served_name,
            "--host",
            "127.0.0.1",
            "--port",
            "{port}",
        ]
        if ctx.gpu_memory_fraction is not None:
            args += ["--gpu-memory-fraction", f"{ctx.gpu_memory_fraction:.2f}"]
        return (*args, *ctx.engine_args)
