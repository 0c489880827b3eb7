"""Factories for fixture host trees: a fake root with os-release, /proc and /sys.

Every preflight test builds its host through `HostTree`, so the layout of
the fake files lives in one place.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from llmos.preflight import NvmlSnapshot, PreflightOptions, RecordedNvmlReader

NVML_FIXTURES = Path(__file__).parent / "fixtures" / "nvml"

OS_RELEASES: dict[str, tuple[str, str]] = {
    # ID -> (NAME, PRETTY_NAME template)
    "ubuntu": ("Ubuntu", "Ubuntu {v} LTS"),
    "rhel": ("Red Hat Enterprise Linux", "Red Hat Enterprise Linux {v}"),
    "sles": ("SLES", "SUSE Linux Enterprise Server {v}"),
    "opensuse-leap": ("openSUSE Leap", "openSUSE Leap {v}"),
    "rocky": ("Rocky Linux", "Rocky Linux {v}"),
    "debian": ("Debian GNU/Linux", "Debian GNU/Linux {v}"),
    "fedora": ("Fedora Linux", "Fedora Linux {v}"),
    "arch": ("Arch Linux", "Arch Linux"),
}


def nvml_reader(name: str) -> RecordedNvmlReader:
    """The named NVML recording from fixtures/nvml (without the .json)."""
    return RecordedNvmlReader.from_file(NVML_FIXTURES / f"{name}.json")


@dataclass
class HostTree:
    """A fixture root; methods write the files a check reads."""

    root: Path
    data_dir: Path = field(init=False)

    def __post_init__(self) -> None:
        self.data_dir = self.root / "var" / "lib" / "llmos-data"

    def write(self, host_path: str, text: str) -> Path:
        path = self.root / host_path.lstrip("/")
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        return path

    def mkdir(self, host_path: str) -> Path:
        path = self.root / host_path.lstrip("/")
        path.mkdir(parents=True, exist_ok=True)
        return path

    def os_release(self, os_id: str, version_id: str | None) -> HostTree:
        name, pretty = OS_RELEASES.get(os_id, (os_id, os_id + " {v}"))
        lines = [f'NAME="{name}"', f"ID={os_id}", f'PRETTY_NAME="{pretty.format(v=version_id)}"']
        if version_id is not None:
            lines.append(f'VERSION_ID="{version_id}"')
        self.write("/etc/os-release", "\n".join(lines) + "\n")
        return self

    def arch(self, machine: str) -> HostTree:
        self.write("/proc/sys/kernel/arch", machine + "\n")
        return self

    def cpus(self, count: int) -> HostTree:
        blocks = [f"processor\t: {i}\nmodel name\t: Test CPU\n" for i in range(count)]
        self.write("/proc/cpuinfo", "\n".join(blocks))
        return self

    def memory_kb(self, kilobytes: int) -> HostTree:
        self.write("/proc/meminfo", f"MemTotal:       {kilobytes} kB\nMemFree: 1000 kB\n")
        return self

    def hostname(self, name: str) -> HostTree:
        self.write("/proc/sys/kernel/hostname", name + "\n")
        return self

    def pci_device(
        self, address: str, vendor: int, device: int, device_class: int, driver: str | None
    ) -> HostTree:
        base = f"/sys/bus/pci/devices/{address}"
        self.write(f"{base}/vendor", f"0x{vendor:04x}\n")
        self.write(f"{base}/device", f"0x{device:04x}\n")
        self.write(f"{base}/class", f"0x{device_class:06x}\n")
        if driver is not None:
            target = self.mkdir(f"/sys/bus/pci/drivers/{driver}")
            os.symlink(target, self.root / base.lstrip("/") / "driver")
        return self

    def nvidia_driver(self, version: str) -> HostTree:
        self.write(
            "/proc/driver/nvidia/version",
            f"NVRM version: NVIDIA UNIX x86_64 Kernel Module  {version}  Tue Jan 1 2024\n"
            "GCC version:  gcc version 12.2.0 (Debian 12.2.0-14)\n",
        )
        return self

    def process(
        self, pid: int, comm: str, *argv: str, fds: dict[int, str] | None = None
    ) -> HostTree:
        self.write(f"/proc/{pid}/comm", comm + "\n")
        self.write(f"/proc/{pid}/cmdline", "\0".join(argv or (comm,)) + "\0")
        fd_dir = self.mkdir(f"/proc/{pid}/fd")
        for fd, target in (fds or {}).items():
            os.symlink(target, fd_dir / str(fd))
        return self

    def tcp_listener(self, port: int, inode: int) -> HostTree:
        path = self.root / "proc/net/tcp"
        if not path.exists():
            self.write(
                "/proc/net/tcp",
                "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt"
                "   uid  timeout inode\n",
            )
        count = len(path.read_text().splitlines()) - 1
        line = (
            f"{count:4d}: 00000000:{port:04X} 00000000:0000 0A 00000000:00000000 "
            f"00:00000000 00000000     0        0 {inode} 1 0000000000000000 100 0 0 10 0\n"
        )
        with path.open("a") as handle:
            handle.write(line)
        return self

    def options(self, **overrides: Any) -> PreflightOptions:
        """Options reading this tree, with no GPU in NVML unless ``nvml`` is given."""
        values: dict[str, Any] = {
            "root": self.root,
            "data_dir": self.data_dir,
            "quick": True,
            "nvml": RecordedNvmlReader(NvmlSnapshot(error="NVML Shared Library Not Found")),
        }
        values.update(overrides)
        return PreflightOptions(**values)


def healthy_tree(root: Path) -> HostTree:
    """A host that meets every requirement: Ubuntu 22.04 on x86_64, 16 cores, 64 GB."""
    tree = HostTree(root)
    tree.os_release("ubuntu", "22.04").arch("x86_64").cpus(16).memory_kb(64 * 1024 * 1024)
    tree.hostname("node-1")
    tree.mkdir("/sys/bus/pci/devices")
    tree.mkdir("/proc/net")
    return tree


def load_json(text: str) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(text)
    return loaded
