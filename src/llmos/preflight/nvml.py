"""GPU readings from NVML, behind a small injectable reader.

`NvmlReader` is the plug point: `PynvmlReader` asks the real driver through
nvidia-ml-py, and `RecordedNvmlReader` replays a JSON recording, so tests
(and bug reports) can stand in for a GPU machine. The GPU check calls
``read()`` once per run.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from llmos._lib import nvml

__all__ = [
    "NvmlDevice",
    "NvmlReader",
    "NvmlSnapshot",
    "PynvmlReader",
    "RecordedNvmlReader",
]


@dataclass(frozen=True)
class NvmlDevice:
    """One GPU as NVML sees it."""

    index: int
    name: str
    memory_total_bytes: int
    compute_capability: tuple[int, int]
    pci_bus_id: str
    uuid: str = ""

    def to_dict(self) -> dict[str, Any]:
        major, minor = self.compute_capability
        return {
            "index": self.index,
            "name": self.name,
            "memoryTotalBytes": self.memory_total_bytes,
            "computeCapability": f"{major}.{minor}",
            "pciBusId": self.pci_bus_id,
            "uuid": self.uuid,
        }

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> NvmlDevice:
        return cls(
            index=int(raw["index"]),
            name=str(raw["name"]),
            memory_total_bytes=int(raw["memoryTotalBytes"]),
            compute_capability=nvml.compute_capability(raw["computeCapability"]),
            pci_bus_id=str(raw.get("pciBusId", "")),
            uuid=str(raw.get("uuid", "")),
        )


@dataclass(frozen=True)
class NvmlSnapshot:
    """What NVML reported: the driver version and devices, or the error it raised."""

    driver_version: str | None = None
    devices: tuple[NvmlDevice, ...] = ()
    error: str | None = None
    """NVML's message when it could not be initialised or read."""

    def to_dict(self) -> dict[str, Any]:
        """The JSON form; `RecordedNvmlReader` reads it back."""
        return {
            "driverVersion": self.driver_version,
            "devices": [d.to_dict() for d in self.devices],
            "error": self.error,
        }

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> NvmlSnapshot:
        return cls(
            driver_version=raw.get("driverVersion"),
            devices=tuple(NvmlDevice.from_dict(d) for d in raw.get("devices", [])),
            error=raw.get("error"),
        )


class NvmlReader(Protocol):
    """Source of NVML readings."""

    def read(self) -> NvmlSnapshot:
        """Read the driver version and every device; report failure in ``error``, never raise."""
        ...


@dataclass(frozen=True)
class RecordedNvmlReader:
    """Replays a snapshot, e.g. one loaded from a JSON recording."""

    snapshot: NvmlSnapshot

    @classmethod
    def from_file(cls, path: Path) -> RecordedNvmlReader:
        """Load a recording written by `NvmlSnapshot.to_dict` (or the ``nvml`` data of a report)."""
        return cls(NvmlSnapshot.from_dict(json.loads(path.read_text(encoding="utf-8"))))

    def read(self) -> NvmlSnapshot:
        return self.snapshot


class PynvmlReader:
    """Reads the live driver through nvidia-ml-py (``pynvml``)."""

    def read(self) -> NvmlSnapshot:
        try:
            with nvml.session() as pynvml:
                try:
                    return _read(pynvml)
                except pynvml.NVMLError as exc:
                    return NvmlSnapshot(error=str(exc))
        except nvml.NvmlUnavailable as exc:
            return NvmlSnapshot(error=str(exc))


def _read(pynvml: Any) -> NvmlSnapshot:
    driver = nvml.text(pynvml.nvmlSystemGetDriverVersion())
    devices = []
    for index in range(pynvml.nvmlDeviceGetCount()):
        handle = pynvml.nvmlDeviceGetHandleByIndex(index)
        major, minor = pynvml.nvmlDeviceGetCudaComputeCapability(handle)
        devices.append(
            NvmlDevice(
                index=index,
                name=nvml.text(pynvml.nvmlDeviceGetName(handle)),
                memory_total_bytes=int(pynvml.nvmlDeviceGetMemoryInfo(handle).total),
                compute_capability=(int(major), int(minor)),
                pci_bus_id=nvml.text(pynvml.nvmlDeviceGetPciInfo(handle).busId),
                uuid=nvml.text(pynvml.nvmlDeviceGetUUID(handle)),
            )
        )
    return NvmlSnapshot(driver_version=driver, devices=tuple(devices))
