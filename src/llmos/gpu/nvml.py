"""The live GPU source: NVML through nvidia-ml-py.

:class:`NvmlGPUSource` keeps NVML initialised between reads, because
critical XID errors arrive as NVML events on an event set that must stay
registered to catch them. Each ``read()`` drains the events that came in
since the last one, then reads every GPU. A value the GPU does not report
(no ECC on a GeForce card, no power reading in a VM) is ``None``; a GPU that
cannot be read at all ("GPU is lost") keeps its last identity and gets a
reading with ``error`` set, which makes it Unhealthy.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any, TypeVar

from llmos._lib import nvml
from llmos.gpu.health import HealthTracker
from llmos.gpu.inventory import (
    GPU,
    EccErrors,
    GPUInfo,
    GPUProcess,
    GPUReading,
    GPUSnapshot,
    MigMode,
)

__all__ = ["NvmlGPUSource"]

log = logging.getLogger(__name__)
T = TypeVar("T")


class NvmlGPUSource:
    """Reads this machine's NVIDIA GPUs; a machine without them reads as an error, not a crash."""

    def __init__(self) -> None:
        self._pynvml: Any = None
        self._events: Any = None
        self._infos: dict[int, GPUInfo] = {}
        self._health = HealthTracker()
        self._lock = threading.Lock()

    def read(self) -> GPUSnapshot:
        with self._lock:
            if self._pynvml is None:
                try:
                    self._open()
                except nvml.NvmlUnavailable as exc:
                    return GPUSnapshot(error=str(exc))
            pynvml = self._pynvml
            try:
                return self._read(pynvml)
            except pynvml.NVMLError as exc:
                # Start afresh next time: the driver may have been reloaded.
                self._close()
                return GPUSnapshot(error=str(exc))

    def close(self) -> None:
        with self._lock:
            self._close()

    def _open(self) -> None:
        pynvml = nvml.start()
        self._pynvml = pynvml
        try:
            self._events = pynvml.nvmlEventSetCreate()
        except pynvml.NVMLError as exc:
            log.info("NVML events unavailable, XID errors will not be seen: %s", exc)
            self._events = None
            return
        for index in range(pynvml.nvmlDeviceGetCount()):
            try:
                handle = pynvml.nvmlDeviceGetHandleByIndex(index)
                pynvml.nvmlDeviceRegisterEvents(
                    handle, pynvml.nvmlEventTypeXidCriticalError, self._events
                )
            except pynvml.NVMLError as exc:
                log.info("GPU %d: XID events unavailable: %s", index, exc)

    def _close(self) -> None:
        pynvml = self._pynvml
        if pynvml is None:
            return
        if self._events is not None:
            _quiet(pynvml, lambda: pynvml.nvmlEventSetFree(self._events))
        self._events = None
        nvml.shutdown(pynvml)
        self._pynvml = None

    def _read(self, pynvml: Any) -> GPUSnapshot:
        xids = self._drain_xids(pynvml)
        count = pynvml.nvmlDeviceGetCount()
        gpus = []
        for index in sorted(set(range(count)) | set(self._infos)):
            try:
                handle = pynvml.nvmlDeviceGetHandleByIndex(index)
                info = self._infos.get(index) or _info(pynvml, handle, index)
                self._infos[index] = info
                reading = _reading(pynvml, handle, info.uuid, xids.get(info.uuid, ()))
            except pynvml.NVMLError as exc:
                known = self._infos.get(index)
                if known is None:
                    log.warning("GPU %d cannot be read: %s", index, exc)
                    continue
                info, reading = known, GPUReading(uuid=known.uuid, error=str(exc))
            gpus.append(GPU(info, reading, self._health.observe(reading)))
        cuda = _maybe(pynvml, pynvml.nvmlSystemGetCudaDriverVersion_v2)
        return GPUSnapshot(
            driver_version=nvml.text(pynvml.nvmlSystemGetDriverVersion()),
            cuda_version=f"{cuda // 1000}.{cuda % 1000 // 10}" if cuda else None,
            nvml_version=_maybe(pynvml, lambda: nvml.text(pynvml.nvmlSystemGetNVMLVersion())),
            gpus=tuple(gpus),
        )

    def _drain_xids(self, pynvml: Any) -> dict[str, tuple[int, ...]]:
        """XIDs per GPU uuid that arrived since the last read (waits for none)."""
        found: dict[str, tuple[int, ...]] = {}
        if self._events is None:
            return found
        for _ in range(1000):  # a bound, should a broken driver never time out
            try:
                data = pynvml.nvmlEventSetWait_v2(self._events, 0)
            except pynvml.NVMLError_Timeout:
                break
            except pynvml.NVMLError as exc:
                log.info("reading NVML events failed: %s", exc)
                break
            if data.eventType != pynvml.nvmlEventTypeXidCriticalError:
                continue
            try:
                uuid = nvml.text(pynvml.nvmlDeviceGetUUID(data.device))
            except pynvml.NVMLError:
                uuid = ""  # the event names no device we can read: blame none
            if uuid:
                log.warning("GPU %s raised XID %d", uuid, data.eventData)
                found[uuid] = (*found.get(uuid, ()), int(data.eventData))
        return found


def _info(pynvml: Any, handle: Any, index: int) -> GPUInfo:
    major, minor = pynvml.nvmlDeviceGetCudaComputeCapability(handle)
    mig: MigMode = "NotSupported"
    mig_modes = _maybe(pynvml, lambda: pynvml.nvmlDeviceGetMigMode(handle))
    if mig_modes is not None:
        mig = "Enabled" if mig_modes[0] == pynvml.NVML_DEVICE_MIG_ENABLE else "Disabled"
    ecc = _maybe(pynvml, lambda: pynvml.nvmlDeviceGetEccMode(handle))
    limit = _maybe(pynvml, lambda: pynvml.nvmlDeviceGetEnforcedPowerLimit(handle))
    return GPUInfo(
        index=index,
        uuid=nvml.text(pynvml.nvmlDeviceGetUUID(handle)),
        name=nvml.text(pynvml.nvmlDeviceGetName(handle)),
        memory_total_bytes=int(pynvml.nvmlDeviceGetMemoryInfo(handle).total),
        compute_capability=(int(major), int(minor)),
        pci_bus_id=nvml.text(pynvml.nvmlDeviceGetPciInfo(handle).busId),
        mig_mode=mig,
        ecc_enabled=None if ecc is None else bool(ecc[0]),
        power_limit_watts=None if limit is None else limit / 1000,
    )


def _reading(pynvml: Any, handle: Any, uuid: str, xids: tuple[int, ...]) -> GPUReading:
    def ecc(kind: int, counter: int) -> int | None:
        value = _maybe(pynvml, lambda: pynvml.nvmlDeviceGetTotalEccErrors(handle, kind, counter))
        return None if value is None else int(value)

    corrected = pynvml.NVML_MEMORY_ERROR_TYPE_CORRECTED
    uncorrected = pynvml.NVML_MEMORY_ERROR_TYPE_UNCORRECTED
    errors = EccErrors(
        volatile_corrected=ecc(corrected, pynvml.NVML_VOLATILE_ECC),
        volatile_uncorrected=ecc(uncorrected, pynvml.NVML_VOLATILE_ECC),
        aggregate_corrected=ecc(corrected, pynvml.NVML_AGGREGATE_ECC),
        aggregate_uncorrected=ecc(uncorrected, pynvml.NVML_AGGREGATE_ECC),
    )
    utilization = _maybe(pynvml, lambda: pynvml.nvmlDeviceGetUtilizationRates(handle).gpu)
    power = _maybe(pynvml, lambda: pynvml.nvmlDeviceGetPowerUsage(handle))
    temperature = _maybe(
        pynvml, lambda: pynvml.nvmlDeviceGetTemperature(handle, pynvml.NVML_TEMPERATURE_GPU)
    )
    # (corrected rows, uncorrected rows, remapping pending, remapping failed); Ampere and later.
    remapped = _maybe(pynvml, lambda: pynvml.nvmlDeviceGetRemappedRows(handle))
    running = _maybe(pynvml, lambda: pynvml.nvmlDeviceGetComputeRunningProcesses(handle)) or []
    processes = tuple(
        GPUProcess(
            pid=int(p.pid),
            # NVML_VALUE_NOT_AVAILABLE comes through as None (or a huge number in old bindings).
            used_memory_bytes=None
            if p.usedGpuMemory is None or p.usedGpuMemory >= 2**63
            else int(p.usedGpuMemory),
        )
        for p in running
    )
    return GPUReading(
        uuid=uuid,
        utilization_percent=None if utilization is None else int(utilization),
        memory_used_bytes=int(pynvml.nvmlDeviceGetMemoryInfo(handle).used),
        temperature_celsius=None if temperature is None else int(temperature),
        power_watts=None if power is None else power / 1000,
        ecc_errors=None if errors == EccErrors() else errors,
        xid_errors=xids,
        remapped_rows_pending=None if remapped is None else bool(remapped[2]),
        remapped_rows_failed=None if remapped is None else bool(remapped[3]),
        processes=processes,
    )


def _maybe(pynvml: Any, call: Callable[[], T]) -> T | None:
    """``call()``, or None where the GPU does not support it; a lost GPU still raises."""
    try:
        return call()
    except pynvml.NVMLError_GpuIsLost:
        raise
    except pynvml.NVMLError:
        return None


def _quiet(pynvml: Any, call: Callable[[], object]) -> None:
    try:
        call()
    except pynvml.NVMLError as exc:
        log.debug("NVML cleanup: %s", exc)
