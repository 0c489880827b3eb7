"""Where the transformers engine puts a model: the CPU, or GPUs under a memory share."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from llmos.engines.hf_server.model import load_options
from tiny_model import require_transformers

GIB = 2**30


def test_cpu_loads_in_float32_unless_told() -> None:
    assert load_options(cuda=False, dtype="auto", gpu_memory_fraction=0.5) == {"dtype": "float32"}
    assert load_options(cuda=False, dtype="bfloat16", gpu_memory_fraction=None) == {
        "dtype": "bfloat16"
    }


def test_gpus_take_the_checkpoint_dtype_and_all_devices() -> None:
    assert load_options(cuda=True, dtype="auto", gpu_memory_fraction=None) == {
        "dtype": "auto",
        "device_map": "auto",
    }


def test_memory_share_becomes_max_memory_per_gpu(monkeypatch: pytest.MonkeyPatch) -> None:
    require_transformers()
    import torch

    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    monkeypatch.setattr(
        torch.cuda, "get_device_properties", lambda i: SimpleNamespace(total_memory=80 * GIB)
    )
    options = load_options(cuda=True, dtype="float16", gpu_memory_fraction=0.25)
    assert options["device_map"] == "auto" and options["dtype"] == "float16"
    budget = options["max_memory"]
    assert budget[0] == budget[1] == 20 * GIB
    assert budget["cpu"] > 0, "what does not fit goes to RAM, not to disk"
