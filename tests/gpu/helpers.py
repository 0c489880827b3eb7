"""GPU fixtures and scheduler states for the gpu tests."""

from __future__ import annotations

from pathlib import Path

from llmos.gpu.scheduler import Allocation, GPUState
from llmos.gpu.source import FixtureGPUSource

FIXTURES = Path(__file__).parent.parent / "fixtures" / "gpus"
H100X8 = FIXTURES / "h100-80gb-x8.json"
RTX4090 = FIXTURES / "rtx4090-24gb-x1.json"
MIXED = FIXTURES / "mixed-a100-40gb-x2-l4-x1.json"
H200 = FIXTURES / "h200-141gb-x1.json"  # recorded on a real GPU, not hand-assembled
GiB = 2**30


def node(path: Path) -> list[GPUState]:
    """The fixture's GPUs as the scheduler sees them, nothing allocated."""
    snapshot = FixtureGPUSource.from_file(path).read()
    return [
        GPUState(
            index=g.info.index,
            memory_total_bytes=g.info.memory_total_bytes,
            device=f"node-gpu{g.info.index}",
            name=g.info.name,
        )
        for g in snapshot.gpus
    ]


def held(name: str, gib: float, replica: int = 0, whole: bool = False) -> Allocation:
    return Allocation("ModelService", "default", name, replica, int(gib * GiB), whole)
