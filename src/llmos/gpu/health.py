"""GPU health from NVML's signals: critical XID events, row-remapping failure, a lost GPU.

Both sources (NVML and the recorded fixtures) feed each reading to one
:class:`HealthTracker`, which remembers the critical XIDs a GPU has raised
since the server started: once a GPU reports one (a double-bit ECC error,
falling off the bus, …) it stays Unhealthy until the server restarts,
usually after the GPU was reset or replaced. XIDs that mean an application
fault rather than a hardware one are ignored, as NVIDIA's Kubernetes device
plugin does.
"""

from __future__ import annotations

from llmos.gpu.inventory import GPUReading, Health

__all__ = ["APPLICATION_XIDS", "HealthTracker", "describe_xid", "judge"]

# Raised by faulty programs, not by failing hardware (the device plugin's default skip list).
APPLICATION_XIDS = frozenset({13, 31, 43, 45, 68, 109})

_XID_MEANINGS = {
    48: "double-bit ECC error",
    61: "internal micro-controller breakpoint",
    62: "internal micro-controller halt",
    63: "ECC page retirement or row remapping event",
    64: "ECC page retirement or row remapping failure",
    74: "NVLink error",
    79: "GPU has fallen off the bus",
    92: "high single-bit ECC error rate",
    94: "contained ECC error",
    95: "uncontained ECC error",
    119: "GSP RPC timeout",
    120: "GSP error",
}


def describe_xid(xid: int) -> str:
    meaning = _XID_MEANINGS.get(xid)
    return f"XID {xid} ({meaning})" if meaning else f"XID {xid}"


def judge(reading: GPUReading, critical_xids: tuple[int, ...] = ()) -> Health:
    """Health from one reading plus the critical XIDs seen so far."""
    reasons = []
    if reading.error:
        reasons.append(f"NVML cannot read the GPU: {reading.error}")
    reasons.extend(describe_xid(xid) for xid in critical_xids)
    if reading.remapped_rows_failed:
        reasons.append("row remapping failed: the GPU needs service")
    return Health("Unhealthy", tuple(reasons)) if reasons else Health()


class HealthTracker:
    """Keeps each GPU's critical XIDs across readings (until the server restarts)."""

    def __init__(self) -> None:
        self._xids: dict[str, tuple[int, ...]] = {}

    def observe(self, reading: GPUReading) -> Health:
        seen = self._xids.get(reading.uuid, ())
        for xid in reading.xid_errors:
            if xid not in APPLICATION_XIDS and xid not in seen:
                seen = (*seen, xid)
        self._xids[reading.uuid] = seen
        return judge(reading, seen)
