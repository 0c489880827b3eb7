"""How much GPU memory a model needs, estimated before it is placed.

The estimate is deliberately simple, and reported in the ModelService's
``status.gpuMemoryEstimate``:

    weights + KV cache + overhead

- **weights**: a GGUF file's size (its tensors are nearly all of it); the
  tensor bytes listed in the headers of a directory's ``*.safetensors`` files;
  else the model's size on disk.
- **KV cache**: ``2 (K and V) * layers * context * KV heads * head size * 2
  bytes`` (fp16), from the GGUF metadata (``{arch}.block_count``,
  ``{arch}.attention.head_count_kv``, …) or the directory's ``config.json``
  (``num_hidden_layers``, ``num_key_value_heads``, …), for a context of
  ``min(4096, the model's trained context)``: 4096 is what LLMOS starts
  llama.cpp with. Without that metadata, none.
- **overhead**: 512 MiB (the CUDA context, compute buffers) plus 5% of the weights.

The layer count also tells llama.cpp how many layers fit a memory share
(:meth:`MemoryEstimate.offload_layers`). vLLM reserves its
``--gpu-memory-utilization`` share whatever the model needs, and
transformers grows its cache as it goes, so for them this is a guide, not a limit.
"""

from __future__ import annotations

import functools
import json
import logging
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from llmos.gpu.errors import GPUError
from llmos.gpu.gguf import read_metadata

__all__ = ["DEFAULT_CONTEXT", "MemoryEstimate", "estimate_memory"]

log = logging.getLogger(__name__)
DEFAULT_CONTEXT = 4096
OVERHEAD_BYTES = 512 * 2**20
OVERHEAD_SHARE = 0.05
_KV_BYTES = 2  # fp16 K and V entries
_MAX_HEADER = 100 * 2**20


@dataclass(frozen=True)
class MemoryEstimate:
    weights_bytes: int
    kv_cache_bytes: int = 0
    overhead_bytes: int = 0
    layers: int | None = None  # transformer blocks, when the metadata says
    context_length: int | None = None  # the context the KV cache is sized for
    basis: str = "file size"  # what the weights figure came from

    @property
    def total_bytes(self) -> int:
        return self.weights_bytes + self.kv_cache_bytes + self.overhead_bytes

    def offload_layers(self, budget_bytes: int) -> int | None:
        """Layers to put on a GPU share of ``budget_bytes``; None when all fit (or unknown)."""
        if self.total_bytes <= budget_bytes or not self.layers:
            return None
        per_layer = (self.weights_bytes + self.kv_cache_bytes) / self.layers
        room = budget_bytes - self.overhead_bytes
        return max(0, min(self.layers, int(room // per_layer)))


def estimate_memory(
    path: Path, model_format: str, size_bytes: int, context: int = DEFAULT_CONTEXT
) -> MemoryEstimate:
    """Estimate the GPU memory to serve the model at ``path`` (a GGUF file or a directory)."""
    try:
        stamp = path.stat().st_mtime_ns
    except OSError:
        stamp = 0
    return _cached(str(path), stamp, model_format, size_bytes, context)


@functools.lru_cache(maxsize=256)
def _cached(
    path: str, stamp: int, model_format: str, size_bytes: int, context: int
) -> MemoryEstimate:
    model = Path(path)
    weights, basis = size_bytes, "file size"
    shape: dict[str, int] = {}
    try:
        if model_format == "gguf":
            shape = _gguf_shape(read_metadata(model))
            basis = "GGUF metadata" if shape else basis
        elif model.is_dir():
            listed = _safetensors_bytes(model)
            if listed:
                weights, basis = listed, "safetensors headers"
            shape = _config_shape(model / "config.json")
    except (OSError, GPUError, ValueError) as exc:
        log.info("memory estimate of %s from its size only: %s", model, exc)
        shape = {}
    layers = shape.get("layers")
    kv_cache = 0
    length = None
    if layers and shape.get("kv_width"):
        length = min(context, shape.get("context") or context)
        kv_cache = 2 * layers * length * shape["kv_width"] * _KV_BYTES
    overhead = OVERHEAD_BYTES + int(weights * OVERHEAD_SHARE)
    return MemoryEstimate(weights, kv_cache, overhead, layers, length, basis)


def _positive(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else None


def _shape(
    layers: Any, width: Any, heads: Any, kv_heads: Any, head_size: Any, context: Any
) -> dict[str, int]:
    """``layers``, ``kv_width`` (K or V values per token per layer) and ``context``."""
    result: dict[str, int] = {}
    if _positive(layers):
        result["layers"] = layers
    heads = _positive(heads)
    size = _positive(head_size) or (_positive(width) // heads if heads and _positive(width) else 0)
    kv = _positive(kv_heads) or heads
    if size and kv:
        result["kv_width"] = kv * size
    if _positive(context):
        result["context"] = context
    return result


def _gguf_shape(meta: dict[str, Any]) -> dict[str, int]:
    arch = meta.get("general.architecture")
    if not isinstance(arch, str):
        return {}
    return _shape(
        meta.get(f"{arch}.block_count"),
        meta.get(f"{arch}.embedding_length"),
        meta.get(f"{arch}.attention.head_count"),
        meta.get(f"{arch}.attention.head_count_kv"),
        meta.get(f"{arch}.attention.key_length"),
        meta.get(f"{arch}.context_length"),
    )


def _config_shape(config_path: Path) -> dict[str, int]:
    if not config_path.is_file():
        return {}
    config = json.loads(config_path.read_text(encoding="utf-8"))
    if not isinstance(config, dict):
        return {}
    # Multimodal configs nest the language model's.
    config = config.get("text_config") or config
    return _shape(
        config.get("num_hidden_layers") or config.get("n_layer"),
        config.get("hidden_size") or config.get("n_embd"),
        config.get("num_attention_heads") or config.get("n_head"),
        config.get("num_key_value_heads"),
        config.get("head_dim"),
        config.get("max_position_embeddings") or config.get("n_positions"),
    )


def _safetensors_bytes(directory: Path) -> int:
    """Bytes of the tensors listed in the headers of every ``*.safetensors`` file."""
    total = 0
    for file in sorted(directory.glob("*.safetensors")):
        with file.open("rb") as handle:
            (size,) = struct.unpack("<Q", handle.read(8))
            if size > _MAX_HEADER:
                raise ValueError(f"{file}: a safetensors header of {size} bytes")
            header = json.loads(handle.read(size))
        for name, tensor in header.items():
            if name != "__metadata__" and isinstance(tensor, dict):
                start, end = tensor["data_offsets"]
                total += int(end) - int(start)
    return total
