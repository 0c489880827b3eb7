"""vLLM (``vllm serve``): Hugging Face models on NVIDIA GPUs.

vLLM pins its own FastAPI, torch and CUDA stack, so it lives in an
environment of its own (``uv tool install vllm``): LLMOS only needs the
``vllm`` command on PATH, or its path in ``LLMOS_VLLM_COMMAND``.
"""

from __future__ import annotations

import os
import shutil
from typing import ClassVar

from llmos.engines.base import Engine, EngineContext, ModelFormat, Probe, share_text


class VLLMEngine(Engine):
    name: ClassVar[str] = "vllm"
    # Not an LLMOS extra: vLLM pins its own torch, so it goes in an environment of its own.
    install: ClassVar[str] = "uv tool install vllm==0.33.0"
    modules: ClassVar[tuple[str, ...]] = ("vllm",)
    formats: ClassVar[tuple[ModelFormat, ...]] = ("safetensors", "gguf")
    needs_gpu: ClassVar[bool] = True
    health: ClassVar[Probe] = Probe("/health", startup_timeout_seconds=1200)
    key_env: ClassVar[str] = "VLLM_API_KEY"  # what --api-key defaults to; guards /v1 only
    # Not yet tried in the sandbox on a GPU (its own environment, NCCL, /dev/shm): outside it.
    sandboxed: ClassVar[bool] = False

    @classmethod
    def executable(cls) -> str | None:
        return shutil.which(os.environ.get("LLMOS_VLLM_COMMAND") or "vllm")

    @classmethod
    def missing(cls) -> str | None:
        if cls.executable():
            return None
        return (
            "the vllm engine is not installed on this node (no `vllm` command on PATH): "
            f"install it in its own environment with `{cls.install}`, or set "
            "LLMOS_VLLM_COMMAND to its path"
        )

    def command(self, ctx: EngineContext) -> tuple[str, ...]:
        args = [
            self.executable() or "vllm",
            "serve",
            str(ctx.model.path),
            "--host",
            "127.0.0.1",
            "--port",
            "{port}",
            "--served-model-name",
            ctx.served_name,
        ]
        if len(ctx.gpus) > 1 and "--tensor-parallel-size" not in ctx.engine_args:
            args += ["--tensor-parallel-size", str(len(ctx.gpus))]
        if (
            ctx.gpu_memory_fraction is not None
            and "--gpu-memory-utilization" not in ctx.engine_args
        ):
            args += ["--gpu-memory-utilization", share_text(ctx.gpu_memory_fraction)]
        return (*args, *ctx.engine_args)
