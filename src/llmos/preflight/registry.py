"""The checks preflight runs, in the order they are reported."""

from __future__ import annotations

from llmos.preflight.check import Check
from llmos.preflight.checks.arch import ArchitectureCheck
from llmos.preflight.checks.cpu import CpuCheck
from llmos.preflight.checks.disk_iops import DiskIopsCheck
from llmos.preflight.checks.disk_latency import DiskLatencyCheck
from llmos.preflight.checks.disk_space import DiskSpaceCheck
from llmos.preflight.checks.firewalld import FirewalldCheck
from llmos.preflight.checks.gpu import GpuCheck
from llmos.preflight.checks.hostname import HostnameCheck
from llmos.preflight.checks.hostname_unique import HostnameUniqueCheck
from llmos.preflight.checks.kubernetes import KubernetesCheck
from llmos.preflight.checks.memory import MemoryCheck
from llmos.preflight.checks.nodeports import NodePortRangeCheck
from llmos.preflight.checks.os_release import OperatingSystemCheck
from llmos.preflight.checks.ports import PortsCheck

__all__ = ["CHECK_IDS", "all_checks"]


def all_checks() -> list[Check]:
    """A fresh instance of every check, in report order."""
    return [
        ArchitectureCheck(),
        OperatingSystemCheck(),
        CpuCheck(),
        MemoryCheck(),
        DiskSpaceCheck(),
        DiskIopsCheck(),
        DiskLatencyCheck(),
        GpuCheck(),
        HostnameCheck(),
        HostnameUniqueCheck(),
        KubernetesCheck(),
        FirewalldCheck(),
        PortsCheck(),
        NodePortRangeCheck(),
    ]


CHECK_IDS: tuple[str, ...] = tuple(check.id for check in all_checks())
