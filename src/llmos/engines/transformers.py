"""Hugging Face transformers through LLMOS's small built-in OpenAI-compatible server.

For any causal LM (and embeddings) on CPU or GPU, where vLLM is absent or
overkill. The server itself is ``llmos.engines.hf_server``; it needs the
``transformers`` extra (torch, transformers, accelerate), which
:meth:`Engine.missing` checks for on this node.
"""

from __future__ import annotations

import sys
from typing import ClassVar

from llmos.engines.base import Engine, EngineContext, ModelFormat, Probe, share_text


class TransformersEngine(Engine):
    name: ClassVar[str] = "transformers"
    install: ClassVar[str] = "pip install 'llmos[transformers]' (or scripts/setup --transformers)"
    modules: ClassVar[tuple[str, ...]] = ("torch", "transformers", "accelerate")
    formats: ClassVar[tuple[ModelFormat, ...]] = ("safetensors",)
    health: ClassVar[Probe] = Probe("/health", startup_timeout_seconds=600)
    key_env: ClassVar[str] = "LLMOS_ENGINE_KEY"  # hf_server.KEY_ENV

    def command(self, ctx: EngineContext) -> tuple[str, ...]:
        args = [
            sys.executable,
            "-P",  # the working dir may be a volume: none of its files stand in for modules
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
            args += ["--gpu-memory-fraction", share_text(ctx.gpu_memory_fraction)]
        return (*args, *ctx.engine_args)

    def env(self, ctx: EngineContext) -> dict[str, str]:
        # The model is already on disk (LLMOS downloads it first): never wait on the Hub.
        return {**super().env(ctx), "HF_HUB_OFFLINE": "1"}
