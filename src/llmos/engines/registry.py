"""Engine lookup by name, and ``auto``: llama.cpp for GGUF, vLLM on a GPU, else transformers."""

from __future__ import annotations

from llmos._lib.errors import Reason
from llmos.engines.base import Engine, EngineError, ModelFiles
from llmos.engines.llama_cpp import LlamaCppEngine
from llmos.engines.transformers import TransformersEngine
from llmos.engines.vllm import VLLMEngine

ENGINES: dict[str, type[Engine]] = {
    LlamaCppEngine.name: LlamaCppEngine,
    VLLMEngine.name: VLLMEngine,
    TransformersEngine.name: TransformersEngine,
}


def choose(name: str, model: ModelFiles, has_gpu: bool) -> Engine:
    """The engine for ``spec.engine`` (``auto`` decides from the model and the node)."""
    if name != "auto":
        engine = ENGINES.get(name)
        if engine is None:
            raise EngineError(
                f"unknown engine {name!r}: use auto, {', '.join(ENGINES)}", Reason.INVALID
            )
        return engine()
    if model.format == "gguf":
        return LlamaCppEngine()
    if has_gpu and VLLMEngine.missing() is None:
        return VLLMEngine()
    return TransformersEngine()
