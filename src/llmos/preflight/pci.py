"""Find NVIDIA GPUs on the PCI bus from sysfs, whether or not a driver is bound.

Used by the GPU check: a GPU found here but not by NVML means the driver is
missing or not loaded.
"""

from __future__ import annotations

from dataclasses import dataclass

from llmos.preflight.host import HostFiles

__all__ = ["NVIDIA_VENDOR_ID", "PciGpu", "nvidia_gpus"]

NVIDIA_VENDOR_ID = 0x10DE
_DISPLAY_CLASS = 0x03  # PCI base class "display controller": VGA (0x0300) and 3D (0x0302)


@dataclass(frozen=True)
class PciGpu:
    """An NVIDIA display controller in sysfs."""

    address: str
    device_id: int
    driver: str | None
    """Name of the bound kernel driver (``nvidia``, ``nouveau``, ``vfio-pci``), or None."""

    def describe(self) -> str:
        bound = self.driver or "no driver"
        return f"{self.address} [10de:{self.device_id:04x}] ({bound})"


def _hex(text: str | None) -> int | None:
    try:
        return int((text or "").strip(), 16)
    except ValueError:
        return None


def nvidia_gpus(host: HostFiles) -> list[PciGpu]:
    """NVIDIA display controllers (GPUs) on the PCI bus; audio and USB functions are left out."""
    found = []
    base = "/sys/bus/pci/devices"
    for address in host.entries(base):
        if _hex(host.read_text(f"{base}/{address}/vendor")) != NVIDIA_VENDOR_ID:
            continue
        device_class = _hex(host.read_text(f"{base}/{address}/class"))
        if device_class is None or device_class >> 16 != _DISPLAY_CLASS:
            continue
        link = host.readlink(f"{base}/{address}/driver")
        driver = link.rstrip("/").rsplit("/", 1)[-1] if link else None
        device_id = _hex(host.read_text(f"{base}/{address}/device")) or 0
        found.append(PciGpu(address, device_id, driver))
    return found
