"""NVIDIA GPU check: every NVIDIA GPU on the PCI bus is driven and has compute capability >= 6.0.

GPUs are found from sysfs (PCI vendor 0x10de), so one without a driver is
still found. The driver must be loaded (``/proc/driver/nvidia/version``)
and NVML must answer. A node with no NVIDIA GPU passes as CPU-only.
"""

from __future__ import annotations

import re

from llmos.preflight.check import Check, CheckContext
from llmos.preflight.nvml import NvmlSnapshot
from llmos.preflight.pci import PciGpu, nvidia_gpus
from llmos.preflight.result import CheckResult, Status

__all__ = ["MINIMUM_COMPUTE_CAPABILITY", "GpuCheck"]

MINIMUM_COMPUTE_CAPABILITY = (6, 0)
_REQUIRED = "NVIDIA driver loaded; compute capability >= 6.0"
_DRIVER_FIX = (
    "Install the NVIDIA driver (https://docs.nvidia.com/datacenter/tesla/"
    "driver-installation-guide/index.html), reboot, and check that `nvidia-smi` lists the GPUs."
)
_PROC_VERSION = "/proc/driver/nvidia/version"
_SYS_BUS = "/sys/bus"  # a host without a PCI bus still has /sys/bus


def _proc_driver_version(text: str | None) -> str | None:
    match = re.search(r"Kernel Module\s+(?:for \S+\s+)?(\d+(?:\.\d+)+)", text or "")
    return match.group(1) if match else None


def _gib(size: int) -> str:
    return f"{size / 2**30:.0f} GiB"


class GpuCheck(Check):
    id = "gpu"
    title = "NVIDIA GPUs"

    def run(self, ctx: CheckContext) -> CheckResult:
        if not ctx.host.exists(_SYS_BUS):
            # No sysfs at all (a container without /sys, a fixture root without sys/):
            # an empty PCI bus cannot be told from one that cannot be seen.
            return self.result(
                Status.WARN,
                f"unknown: {ctx.host.path(_SYS_BUS)} is missing, so PCI devices cannot be listed",
                _REQUIRED,
                "Run preflight where /sys is mounted (on the host, or a container with /sys), "
                "so NVIDIA GPUs can be found.",
                reason="not measured",
                data={"pciDevices": []},
            )
        pci = nvidia_gpus(ctx.host)
        data: dict[str, object] = {"pciDevices": [_pci_dict(g) for g in pci]}
        if not pci:
            return self.result(Status.PASS, "no NVIDIA GPU (CPU-only node)", _REQUIRED, data=data)
        found = f"{len(pci)} NVIDIA GPU(s) on PCI: " + ", ".join(g.describe() for g in pci)
        proc_text = ctx.host.read_text(_PROC_VERSION)
        if proc_text is None:
            return self.result(
                Status.FAIL,
                f"{found}; NVIDIA driver not loaded ({_PROC_VERSION} missing)",
                _REQUIRED,
                _DRIVER_FIX,
                data=data,
            )
        snapshot = ctx.nvml.read()
        data["nvml"] = snapshot.to_dict()
        data["procDriverVersion"] = _proc_driver_version(proc_text)
        if snapshot.error is not None or not snapshot.devices:
            why = snapshot.error or "NVML lists no GPU"
            return self.result(
                Status.FAIL, f"{found}; NVML: {why}", _REQUIRED, _DRIVER_FIX, data=data
            )
        return self._judge(snapshot, pci, data)

    def _judge(
        self, snapshot: NvmlSnapshot, pci: list[PciGpu], data: dict[str, object]
    ) -> CheckResult:
        driver = snapshot.driver_version or str(data.get("procDriverVersion"))
        summaries = []
        too_old = []
        for device in snapshot.devices:
            major, minor = device.compute_capability
            summaries.append(
                f"{device.name} ({_gib(device.memory_total_bytes)}, cc {major}.{minor})"
            )
            if device.compute_capability < MINIMUM_COMPUTE_CAPABILITY:
                too_old.append(
                    f"GPU {device.index} {device.name} has compute capability {major}.{minor}"
                )
        measured = f"{'; '.join(summaries)}; driver {driver}"
        if too_old:
            return self.result(
                Status.FAIL,
                measured,
                _REQUIRED,
                "Use GPUs with compute capability 6.0 or newer (Pascal or later): "
                + "; ".join(too_old)
                + ".",
                data=data,
            )
        if len(snapshot.devices) < len(pci):
            return self.result(
                Status.WARN,
                measured,
                _REQUIRED,
                f"NVML sees {len(snapshot.devices)} of {len(pci)} NVIDIA GPUs on PCI; check "
                "`nvidia-smi` and devices bound to other drivers (vfio-pci, nouveau).",
                data=data,
            )
        return self.result(Status.PASS, measured, _REQUIRED, data=data)


def _pci_dict(gpu: PciGpu) -> dict[str, object]:
    return {"address": gpu.address, "deviceId": f"0x{gpu.device_id:04x}", "driver": gpu.driver}
