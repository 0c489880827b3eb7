"""GPUs: NVML inventory and health, recorded fixtures, memory estimates and scheduling.

- ``inventory``: what a GPU is and reads (``GPUInfo``, ``GPUReading``, ``Health``),
  and the recording format of ``scripts/record-gpus.py`` (``Recording``).
- ``source``: the ``GPUSource`` plug point and ``FixtureGPUSource``; ``nvml``: ``NvmlGPUSource``.
- ``health``: critical XIDs and NVML status to Healthy/Unhealthy.
- ``request``: ``spec.resources`` to a ``GPURequest``; ``scheduler``: pick GPUs or refuse.
- ``estimate`` (with ``gguf``): a model's GPU memory from its files.

Pure of the store: the node agent and the ModelService controller
(``llmos.controllers``) call these and keep GPUDevice objects.
"""

from llmos.gpu.errors import GPUError
from llmos.gpu.estimate import MemoryEstimate, estimate_memory
from llmos.gpu.inventory import GPU, GPUInfo, GPUReading, GPUSnapshot, Health, Recording
from llmos.gpu.nvml import NvmlGPUSource
from llmos.gpu.request import GPURequest, Placement, gpu_request, placement
from llmos.gpu.scheduler import Allocation, Assignment, GPUState, Unschedulable, schedule
from llmos.gpu.source import FixtureGPUSource, GPUSource, load_recording

__all__ = [
    "GPU",
    "Allocation",
    "Assignment",
    "FixtureGPUSource",
    "GPUError",
    "GPUInfo",
    "GPUReading",
    "GPURequest",
    "GPUSnapshot",
    "GPUSource",
    "GPUState",
    "Health",
    "MemoryEstimate",
    "NvmlGPUSource",
    "Placement",
    "Recording",
    "Unschedulable",
    "estimate_memory",
    "gpu_request",
    "load_recording",
    "placement",
    "schedule",
]
