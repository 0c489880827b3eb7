"""vLLM (``vllm serve``): Hugging Face models on NVIDIA GPUs."""

from __future__ import annotations

from typing import ClassVar

from llmos.engines.base import Engine, EngineContext, ModelFormat
from llmos.runtime.base import HealthCheck


class VLLMEngine(Engine):
    name: ClassVar[str] = "vllm"
    extra: ClassVar[str] = "vllm"
    modules: ClassVar[tuple[str, ...]] = ("vllm",)
    formats: ClassVar[tuple[ModelFormat, ...]] = ("safetensors", "gguf")
    needs_gpu: ClassVar[bool] = True
    health: ClassVar[HealthCheck] = HealthCheck(path="/health", startup_timeout_seconds=1200)

    def command(self, ctx: EngineContext) -> tuple[str, ...]:
        args = [
            "vllm",
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
            args += ["--gpu-memory-utilization", f"{ctx.gpu_memory_fraction:.2f}"]
        return (*args, *ctx.engine_args)
