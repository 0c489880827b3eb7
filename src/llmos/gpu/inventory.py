"""What LLMOS knows about a GPU: its identity, a live reading, its health; and recordings.

A :class:`GPUSource` (``llmos.gpu.source``) answers a :class:`GPUSnapshot`:
one :class:`GPU` per device, each with the fixed :class:`GPUInfo`, the latest
:class:`GPUReading` and the :class:`Health` judged from it. A
:class:`Recording` is what ``scripts/record-gpus.py`` writes on a real
machine and what the fixture source replays: the devices once, then several
readings. Its JSON keys are camelCase, as in the API; ``to_dict`` and
``from_dict`` are the only way in and out, so the recorder and the fixtures
share one format (``FORMAT``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from llmos._lib.nvml import compute_capability

__all__ = [
    "FORMAT",
    "GPU",
    "EccErrors",
    "GPUInfo",
    "GPUProcess",
    "GPUReading",
    "GPUSnapshot",
    "Health",
    "MigMode",
    "Recording",
    "TimedReading",
]

FORMAT = "llmos.gpu-recording/v1"
MigMode = Literal["Enabled", "Disabled", "NotSupported"]


@dataclass(frozen=True)
class GPUInfo:
    """What does not change while the machine runs."""

    index: int
    uuid: str
    name: str
    memory_total_bytes: int
    compute_capability: tuple[int, int]
    pci_bus_id: str = ""
    mig_mode: MigMode = "NotSupported"
    ecc_enabled: bool | None = None  # None: the GPU has no ECC
    power_limit_watts: float | None = None

    def to_dict(self) -> dict[str, Any]:
        major, minor = self.compute_capability
        return {
            "index": self.index,
            "uuid": self.uuid,
            "name": self.name,
            "pciBusId": self.pci_bus_id,
            "memoryTotalBytes": self.memory_total_bytes,
            "computeCapability": f"{major}.{minor}",
            "migMode": self.mig_mode,
            "eccEnabled": self.ecc_enabled,
            "powerLimitWatts": self.power_limit_watts,
        }

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> GPUInfo:
        mig: MigMode
        match raw.get("migMode") or "NotSupported":
            case "Enabled" | "Disabled" | "NotSupported" as known:
                mig = known
            case other:
                raise ValueError(f"migMode {other!r}: use Enabled, Disabled or NotSupported")
        return cls(
            index=int(raw["index"]),
            uuid=str(raw["uuid"]),
            name=str(raw["name"]),
            memory_total_bytes=int(raw["memoryTotalBytes"]),
            compute_capability=compute_capability(raw["computeCapability"]),
            pci_bus_id=str(raw.get("pciBusId") or ""),
            mig_mode=mig,
            ecc_enabled=raw.get("eccEnabled"),
            power_limit_watts=_float(raw.get("powerLimitWatts")),
        )


@dataclass(frozen=True)
class EccErrors:
    """ECC error counts; volatile since the last driver load, aggregate over the GPU's life."""

    volatile_corrected: int | None = None
    volatile_uncorrected: int | None = None
    aggregate_corrected: int | None = None
    aggregate_uncorrected: int | None = None

    def to_dict(self) -> dict[str, int | None]:
        return {
            "volatileCorrected": self.volatile_corrected,
            "volatileUncorrected": self.volatile_uncorrected,
            "aggregateCorrected": self.aggregate_corrected,
            "aggregateUncorrected": self.aggregate_uncorrected,
        }

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> EccErrors:
        return cls(
            volatile_corrected=_int(raw.get("volatileCorrected")),
            volatile_uncorrected=_int(raw.get("volatileUncorrected")),
            aggregate_corrected=_int(raw.get("aggregateCorrected")),
            aggregate_uncorrected=_int(raw.get("aggregateUncorrected")),
        )


@dataclass(frozen=True)
class GPUProcess:
    """A process using the GPU (NVML's compute processes): its pid, as NVML sees it, and memory."""

    pid: int
    used_memory_bytes: int | None = None  # None where the driver does not say (some vGPUs)

    def to_dict(self) -> dict[str, Any]:
        return {"pid": self.pid, "usedMemoryBytes": self.used_memory_bytes}

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> GPUProcess:
        return cls(pid=int(raw["pid"]), used_memory_bytes=_int(raw.get("usedMemoryBytes")))


@dataclass(frozen=True)
class GPUReading:
    """One live reading of one GPU. ``None`` where the GPU does not report the value."""

    uuid: str
    utilization_percent: int | None = None
    memory_used_bytes: int | None = None
    temperature_celsius: int | None = None
    power_watts: float | None = None
    ecc_errors: EccErrors | None = None
    # XIDs NVML reported since the previous reading (critical-error events).
    xid_errors: tuple[int, ...] = ()
    remapped_rows_pending: bool | None = None
    remapped_rows_failed: bool | None = None
    # NVML's error when the GPU could not be read at all (e.g. "GPU is lost").
    error: str | None = None
    # The compute processes on the GPU and their memory (per-workload GPU memory).
    processes: tuple[GPUProcess, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        raw: dict[str, Any] = {
            "uuid": self.uuid,
            "utilizationPercent": self.utilization_percent,
            "memoryUsedBytes": self.memory_used_bytes,
            "temperatureCelsius": self.temperature_celsius,
            "powerWatts": self.power_watts,
            "eccErrors": self.ecc_errors.to_dict() if self.ecc_errors else None,
            "xidErrors": list(self.xid_errors),
            "remappedRows": (
                None
                if self.remapped_rows_pending is None and self.remapped_rows_failed is None
                else {"pending": self.remapped_rows_pending, "failed": self.remapped_rows_failed}
            ),
            "error": self.error,
        }
        if self.processes:  # optional: recordings from before it have none
            raw["processes"] = [p.to_dict() for p in self.processes]
        return raw

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> GPUReading:
        remapped = raw.get("remappedRows") or {}
        ecc = raw.get("eccErrors")
        return cls(
            uuid=str(raw["uuid"]),
            utilization_percent=_int(raw.get("utilizationPercent")),
            memory_used_bytes=_int(raw.get("memoryUsedBytes")),
            temperature_celsius=_int(raw.get("temperatureCelsius")),
            power_watts=_float(raw.get("powerWatts")),
            ecc_errors=EccErrors.from_dict(ecc) if isinstance(ecc, dict) else None,
            xid_errors=tuple(int(x) for x in raw.get("xidErrors") or ()),
            remapped_rows_pending=remapped.get("pending"),
            remapped_rows_failed=remapped.get("failed"),
            error=raw.get("error"),
            processes=tuple(GPUProcess.from_dict(p) for p in raw.get("processes") or ()),
        )


@dataclass(frozen=True)
class Health:
    """Whether the scheduler may place work on a GPU, and why not."""

    status: Literal["Healthy", "Unhealthy"] = "Healthy"
    reasons: tuple[str, ...] = ()

    @property
    def healthy(self) -> bool:
        return self.status == "Healthy"


@dataclass(frozen=True)
class GPU:
    """One GPU as a source reports it now."""

    info: GPUInfo
    reading: GPUReading
    health: Health = field(default_factory=Health)


@dataclass(frozen=True)
class GPUSnapshot:
    """Every GPU of this machine at one moment, or why none could be read."""

    driver_version: str | None = None
    cuda_version: str | None = None
    nvml_version: str | None = None
    gpus: tuple[GPU, ...] = ()
    error: str | None = None

    def memory_by_pid(self) -> dict[int, list[tuple[int, int]]]:
        """pid -> [(GPU index, bytes)] from the readings' compute processes."""
        found: dict[int, list[tuple[int, int]]] = {}
        for gpu in self.gpus:
            for process in gpu.reading.processes:
                if process.used_memory_bytes is not None:
                    held = found.setdefault(process.pid, [])
                    held.append((gpu.info.index, process.used_memory_bytes))
        return found


@dataclass(frozen=True)
class TimedReading:
    """The readings of every GPU taken at one moment (RFC 3339 ``at``)."""

    at: str
    gpus: tuple[GPUReading, ...]

    def to_dict(self) -> dict[str, Any]:
        return {"at": self.at, "gpus": [r.to_dict() for r in self.gpus]}

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> TimedReading:
        return cls(
            at=str(raw.get("at") or ""),
            gpus=tuple(GPUReading.from_dict(r) for r in raw.get("gpus") or ()),
        )


@dataclass(frozen=True)
class Recording:
    """A machine's GPUs and a series of readings: the recorder's output, the fixtures' input."""

    gpus: tuple[GPUInfo, ...]
    readings: tuple[TimedReading, ...]
    driver_version: str | None = None
    cuda_version: str | None = None
    nvml_version: str | None = None
    recorded_at: str = ""
    interval_seconds: float | None = None
    # "nvml" when the recorder wrote it; anything else says how it was made.
    origin: str = "nvml"
    note: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {
            "format": FORMAT,
            "origin": self.origin,
            "note": self.note,
            "recordedAt": self.recorded_at,
            "intervalSeconds": self.interval_seconds,
            "driverVersion": self.driver_version,
            "cudaVersion": self.cuda_version,
            "nvmlVersion": self.nvml_version,
            "gpus": [g.to_dict() for g in self.gpus],
            "readings": [r.to_dict() for r in self.readings],
        }

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> Recording:
        if raw.get("format") != FORMAT:
            raise ValueError(
                f"not a GPU recording: format is {raw.get('format')!r}, expected {FORMAT!r} "
                "(write one with scripts/record-gpus.py)"
            )
        gpus = tuple(GPUInfo.from_dict(g) for g in raw.get("gpus") or ())
        readings = tuple(TimedReading.from_dict(r) for r in raw.get("readings") or ())
        known = {g.uuid for g in gpus}
        for reading in readings:
            strangers = {r.uuid for r in reading.gpus} - known
            if strangers:
                raise ValueError(
                    f"reading at {reading.at!r} names GPUs not listed in gpus: "
                    + ", ".join(sorted(strangers))
                )
        return cls(
            gpus=gpus,
            readings=readings,
            driver_version=raw.get("driverVersion"),
            cuda_version=raw.get("cudaVersion"),
            nvml_version=raw.get("nvmlVersion"),
            recorded_at=str(raw.get("recordedAt") or ""),
            interval_seconds=_float(raw.get("intervalSeconds")),
            origin=str(raw.get("origin") or ""),
            note=str(raw.get("note") or ""),
        )


def _int(value: Any) -> int | None:
    return None if value is None else int(value)


def _float(value: Any) -> float | None:
    return None if value is None else float(value)
