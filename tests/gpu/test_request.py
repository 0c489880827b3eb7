"""spec.resources to a GPU request: whole GPUs, shares by size or fraction, and refusals."""

from __future__ import annotations

from typing import Any

import pytest

from llmos._lib.quantity import gib
from llmos.gpu.errors import GPUError
from llmos.gpu.request import GPURequest, gpu_request, placement

GiB = 2**30

PARSED: list[tuple[dict[str, Any] | None, GPURequest | None]] = [
    (None, None),
    ({}, None),
    ({"gpu": 0}, None),
    ({"cpu": "2", "memory": "4Gi"}, None),
    ({"gpu": 2}, GPURequest(count=2)),
    ({"gpuMemory": "20Gi"}, GPURequest(memory_bytes=20 * GiB)),
    ({"gpuMemory": "512Mi"}, GPURequest(memory_bytes=512 * 2**20)),
    ({"gpuMemory": "0.5"}, GPURequest(fraction=0.5)),
    ({"gpuMemory": "1"}, GPURequest(fraction=1.0)),
    ({"gpu": 2, "gpuMemory": "30Gi"}, GPURequest(count=2, memory_bytes=30 * GiB)),
]


@pytest.mark.parametrize(("resources", "expected"), PARSED)
def test_parses(resources: dict[str, Any] | None, expected: GPURequest | None) -> None:
    assert gpu_request(resources) == expected


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("20", "'20' is ambiguous: write a size with a unit like 20Gi, or a fraction"),
        ("0", "must be more than 0"),
        ("lots", "is not a quantity"),
    ],
)
def test_refuses(value: str, message: str) -> None:
    with pytest.raises(GPUError, match=message) as caught:
        gpu_request({"gpuMemory": value})
    assert str(caught.value).startswith("spec.resources.gpuMemory")


def test_describes_and_needs() -> None:
    assert GPURequest().describe() == "1 whole GPU"
    assert GPURequest(count=4).describe() == "4 whole GPUs"
    assert GPURequest(memory_bytes=40 * GiB).describe() == "1 GPU with 40 GiB free"
    assert GPURequest(fraction=0.25).describe() == "1 GPU with 25% of its memory free"
    assert GPURequest(fraction=0.25).need(80 * GiB) == 20 * GiB
    assert GPURequest().need(24 * GiB) == 24 * GiB
    assert [gib(24564 * 2**20), gib(40960 * 2**20), gib(23034 * 2**20), gib(300 * 2**20)] == [
        "24 GiB",
        "40 GiB",
        "22.5 GiB",
        "300 MiB",
    ]


def test_placement() -> None:
    assert placement(None) == "binpack"
    assert placement({"gpuPlacement": "spread"}) == "spread"
    with pytest.raises(GPUError, match="use binpack or spread"):
        placement({"gpuPlacement": "scatter"})
