"""What a workload asks of GPUs, read from its ``spec.resources``.

- ``gpu: N`` alone: N whole GPUs, held exclusively.
- ``gpuMemory: 20Gi``: a share of one GPU, by memory; other workloads may share the rest.
- ``gpuMemory: "0.5"``: a share of one GPU, as a fraction of its memory (a plain number
  from 0 to 1; a plain number above 1 is refused as ambiguous).
- ``gpu: N`` with ``gpuMemory``: that share on each of N GPUs.
- ``gpuPlacement: spread``: put shares where the most memory is free instead of
  packing them onto the fullest GPU that fits (``binpack``, the default).
- neither: no GPU; the workload runs on the CPU.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from llmos._lib.errors import Reason
from llmos._lib.quantity import gib, parse_quantity
from llmos.gpu.errors import GPUError
from llmos.resources.ml import gpu_share

__all__ = ["GPURequest", "Placement", "gpu_request", "placement"]

Placement = Literal["binpack", "spread"]


@dataclass(frozen=True)
class GPURequest:
    """GPUs one replica needs: ``count`` GPUs, each whole or a share of it."""

    count: int = 1
    memory_bytes: int | None = None  # a share by size, on each GPU
    fraction: float | None = None  # or a share of each GPU's memory

    @property
    def whole(self) -> bool:
        return self.memory_bytes is None and self.fraction is None

    def need(self, total_bytes: int) -> int:
        """Bytes this request takes on a GPU with ``total_bytes`` of memory."""
        if self.memory_bytes is not None:
            return self.memory_bytes
        if self.fraction is not None:
            return int(total_bytes * self.fraction)
        return total_bytes

    def describe(self) -> str:
        """``1 GPU with 40 GiB free``, ``2 whole GPUs``, ``1 GPU with 50% of its memory free``."""
        gpus = f"{self.count} GPU" + ("s" if self.count > 1 else "")
        if self.memory_bytes is not None:
            return f"{gpus} with {gib(self.memory_bytes)} free"
        if self.fraction is not None:
            return f"{gpus} with {self.fraction:.0%} of its memory free"
        return f"{self.count} whole GPU" + ("s" if self.count > 1 else "")


def gpu_request(resources: Mapping[str, Any] | None) -> GPURequest | None:
    """The request in ``spec.resources``, or None for a CPU workload. Raise GPUError if invalid."""
    resources = resources or {}
    count = resources.get("gpu")
    memory = resources.get("gpuMemory")
    if memory in (None, ""):
        return GPURequest(count=int(count)) if count else None
    text = str(memory)
    try:
        value = parse_quantity(text)
    except ValueError as exc:
        raise GPUError(f"spec.resources.gpuMemory: {exc}", Reason.INVALID) from exc
    if value <= 0:
        raise GPUError(
            f"spec.resources.gpuMemory {text!r} must be more than 0: write a size like 20Gi "
            "or a fraction of one GPU like 0.5",
            Reason.INVALID,
        )
    try:
        memory_bytes, fraction = gpu_share(text)
    except ValueError as exc:
        raise GPUError(f"spec.resources.gpuMemory {exc}", Reason.INVALID) from exc
    count = int(count) if count else 1
    return GPURequest(count=count, memory_bytes=memory_bytes, fraction=fraction)


def placement(resources: Mapping[str, Any] | None) -> Placement:
    """``spec.resources.gpuPlacement``: ``binpack`` (default) or ``spread``."""
    value = (resources or {}).get("gpuPlacement") or "binpack"
    if value not in ("binpack", "spread"):
        raise GPUError(
            f"spec.resources.gpuPlacement {value!r}: use binpack or spread", Reason.INVALID
        )
    return "spread" if value == "spread" else "binpack"
