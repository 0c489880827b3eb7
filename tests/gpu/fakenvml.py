"""A stand-in for the ``pynvml`` module that answers from a GPU recording.

Tests install it as ``sys.modules["pynvml"]`` so ``NvmlGPUSource`` (and the
recorder script) run their real NVML code paths on a machine without a GPU.
Each ``nvmlInit`` … reads the recording's current reading; ``advance()``
moves to the next. Values the recording lacks raise ``NVMLError_NotSupported``,
as NVML does for a GPU without them.
"""

from __future__ import annotations

import types
from dataclasses import dataclass, field
from typing import Any

from llmos.gpu.inventory import GPUReading, Recording


class NVMLError(Exception):
    pass


class NVMLError_NotSupported(NVMLError):
    pass


class NVMLError_Timeout(NVMLError):
    pass


class NVMLError_GpuIsLost(NVMLError):
    def __str__(self) -> str:
        return "GPU is lost"


@dataclass
class _Event:
    device: int
    eventType: int
    eventData: int


@dataclass
class FakeNvml:
    recording: Recording
    reading: int = 0
    inits: int = 0
    pending_xids: list[tuple[int, int]] = field(default_factory=list)  # (index, xid)
    lost: set[int] = field(default_factory=set)

    def advance(self) -> None:
        self.reading = (self.reading + 1) % len(self.recording.readings)

    def module(self) -> types.ModuleType:
        fake = self
        mod = types.ModuleType("pynvml")
        consts: dict[str, Any] = {
            "NVMLError": NVMLError,
            "NVMLError_NotSupported": NVMLError_NotSupported,
            "NVMLError_Timeout": NVMLError_Timeout,
            "NVMLError_GpuIsLost": NVMLError_GpuIsLost,
            "nvmlEventTypeXidCriticalError": 8,
            "NVML_DEVICE_MIG_ENABLE": 1,
            "NVML_MEMORY_ERROR_TYPE_CORRECTED": 0,
            "NVML_MEMORY_ERROR_TYPE_UNCORRECTED": 1,
            "NVML_VOLATILE_ECC": 0,
            "NVML_AGGREGATE_ECC": 1,
            "NVML_TEMPERATURE_GPU": 0,
        }
        for name, value in consts.items():
            setattr(mod, name, value)

        def info(handle: int) -> Any:
            if handle in fake.lost:
                raise NVMLError_GpuIsLost()
            return fake.recording.gpus[handle]

        def now(handle: int) -> GPUReading:
            uuid = info(handle).uuid
            readings = fake.recording.readings[fake.reading].gpus
            return next(r for r in readings if r.uuid == uuid)

        def supported(value: Any) -> Any:
            if value is None:
                raise NVMLError_NotSupported()
            return value

        def init() -> None:
            fake.inits += 1

        def shutdown() -> None:
            fake.inits -= 1

        def wait(event_set: object, timeout_ms: int) -> _Event:
            if not fake.pending_xids:
                raise NVMLError_Timeout()
            index, xid = fake.pending_xids.pop(0)
            return _Event(index, 8, xid)

        def ecc_errors(handle: int, kind: int, counter: int) -> int:
            errors = supported(now(handle).ecc_errors)
            names = {
                (0, 0): "volatile_corrected",
                (1, 0): "volatile_uncorrected",
                (0, 1): "aggregate_corrected",
                (1, 1): "aggregate_uncorrected",
            }
            return int(supported(getattr(errors, names[(kind, counter)])))

        def remapped(handle: int) -> tuple[int, int, int, int]:
            reading = now(handle)
            supported(reading.remapped_rows_failed)
            return (
                0,
                0,
                int(bool(reading.remapped_rows_pending)),
                int(bool(reading.remapped_rows_failed)),
            )

        cuda = fake.recording.cuda_version or "12.4"
        major, minor = (int(p) for p in cuda.split("."))
        functions: dict[str, Any] = {
            "nvmlInit": init,
            "nvmlShutdown": shutdown,
            "nvmlSystemGetDriverVersion": lambda: fake.recording.driver_version,
            "nvmlSystemGetNVMLVersion": lambda: fake.recording.nvml_version,
            "nvmlSystemGetCudaDriverVersion_v2": lambda: major * 1000 + minor * 10,
            "nvmlDeviceGetCount": lambda: len(fake.recording.gpus),
            "nvmlDeviceGetHandleByIndex": lambda index: index,
            "nvmlEventSetCreate": lambda: object(),
            "nvmlEventSetFree": lambda event_set: None,
            "nvmlDeviceRegisterEvents": lambda handle, kinds, event_set: None,
            "nvmlEventSetWait_v2": wait,
            "nvmlDeviceGetUUID": lambda h: info(h).uuid.encode(),  # old bindings answer bytes
            "nvmlDeviceGetName": lambda h: info(h).name,
            "nvmlDeviceGetPciInfo": lambda h: types.SimpleNamespace(busId=info(h).pci_bus_id),
            "nvmlDeviceGetMemoryInfo": lambda h: types.SimpleNamespace(
                total=info(h).memory_total_bytes, used=supported(now(h).memory_used_bytes)
            ),
            "nvmlDeviceGetCudaComputeCapability": lambda h: info(h).compute_capability,
            "nvmlDeviceGetMigMode": lambda h: (
                (1 if info(h).mig_mode == "Enabled" else 0, 0)
                if info(h).mig_mode != "NotSupported"
                else supported(None)
            ),
            "nvmlDeviceGetEccMode": lambda h: (
                (int(info(h).ecc_enabled), 0)
                if info(h).ecc_enabled is not None
                else supported(None)
            ),
            "nvmlDeviceGetEnforcedPowerLimit": lambda h: int(
                supported(info(h).power_limit_watts) * 1000
            ),
            "nvmlDeviceGetUtilizationRates": lambda h: types.SimpleNamespace(
                gpu=supported(now(h).utilization_percent)
            ),
            "nvmlDeviceGetPowerUsage": lambda h: round(supported(now(h).power_watts) * 1000),
            "nvmlDeviceGetTemperature": lambda h, sensor: supported(now(h).temperature_celsius),
            "nvmlDeviceGetTotalEccErrors": ecc_errors,
            "nvmlDeviceGetRemappedRows": remapped,
            "nvmlDeviceGetComputeRunningProcesses": lambda h: [
                types.SimpleNamespace(pid=p.pid, usedGpuMemory=p.used_memory_bytes)
                for p in now(h).processes
            ],
        }
        for name, function in functions.items():
            setattr(mod, name, function)
        return mod
