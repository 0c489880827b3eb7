"""What each engine is started with for a GPU allocation, and what ``auto`` picks.

vLLM cannot be installed on these machines (no GPU, and it pins a CUDA torch of its own),
so its command line is checked here; ``LLMOS_VLLM_COMMAND`` names the command, as a node
with vLLM in its own environment would set it.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from llmos.engines.base import EngineContext, EngineError, ModelFiles
from llmos.engines.llama_cpp import LlamaCppEngine
from llmos.engines.registry import choose
from llmos.engines.transformers import TransformersEngine
from llmos.engines.vllm import VLLMEngine

HF = ModelFiles(Path("/models/qwen"), "safetensors", 16 * 2**30)
GGUF = ModelFiles(Path("/models/smollm2.gguf"), "gguf", 100 * 2**20)


@pytest.fixture
def vllm_installed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    command = tmp_path / "vllm"
    command.write_text("#!/bin/sh\nexit 0\n")
    command.chmod(0o755)
    monkeypatch.setenv("LLMOS_VLLM_COMMAND", str(command))
    return str(command)


def flag(args: tuple[str, ...], name: str) -> str | None:
    return args[args.index(name) + 1] if name in args else None


def test_vllm_is_held_to_its_share_and_spans_its_gpus(vllm_installed: str) -> None:
    shared = VLLMEngine().command(EngineContext(HF, "qwen", gpus=(1,), gpu_memory_fraction=1 / 3))
    assert shared[:3] == (vllm_installed, "serve", "/models/qwen")
    assert flag(shared, "--served-model-name") == "qwen"
    assert flag(shared, "--gpu-memory-utilization") == "0.3333"  # rounded down, never over
    assert "--tensor-parallel-size" not in shared
    whole = VLLMEngine().command(EngineContext(HF, "qwen", gpus=(0, 1, 2, 3)))
    assert flag(whole, "--tensor-parallel-size") == "4"
    assert "--gpu-memory-utilization" not in whole  # whole GPUs: vLLM's own default
    # The user's engineArgs win, and are not given twice.
    mine = ("--gpu-memory-utilization", "0.5", "--tensor-parallel-size", "2")
    asked = VLLMEngine().command(
        EngineContext(HF, "qwen", mine, gpus=(0, 1, 2, 3), gpu_memory_fraction=0.25)
    )
    assert asked.count("--gpu-memory-utilization") == asked.count("--tensor-parallel-size") == 1
    assert asked[-4:] == mine


def test_llama_cpp_offloads_the_layers_that_fit_its_share() -> None:
    on_cpu = LlamaCppEngine().command(EngineContext(GGUF, "smollm2"))
    assert flag(on_cpu, "--n_gpu_layers") == "0"
    whole = LlamaCppEngine().command(EngineContext(GGUF, "smollm2", gpus=(0,)))
    assert flag(whole, "--n_gpu_layers") == "-1"
    part = LlamaCppEngine().command(EngineContext(GGUF, "smollm2", gpus=(0,), gpu_layers=12))
    assert flag(part, "--n_gpu_layers") == "12"


def test_auto_picks_llama_cpp_for_gguf_vllm_on_a_gpu_and_transformers_otherwise(
    vllm_installed: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert isinstance(choose("auto", GGUF, has_gpu=True), LlamaCppEngine)
    assert isinstance(choose("auto", HF, has_gpu=True), VLLMEngine)
    assert isinstance(choose("auto", HF, has_gpu=False), TransformersEngine)
    monkeypatch.setenv("LLMOS_VLLM_COMMAND", os.devnull + "-no-such-vllm")
    monkeypatch.setenv("PATH", "/nonexistent")
    assert VLLMEngine.missing() is not None
    assert isinstance(choose("auto", HF, has_gpu=True), TransformersEngine)
    assert isinstance(choose("vllm", HF, has_gpu=False), VLLMEngine)  # asked for: as asked
    with pytest.raises(EngineError, match="unknown engine 'tgi': use auto, llama-cpp, vllm"):
        choose("tgi", HF, has_gpu=True)
