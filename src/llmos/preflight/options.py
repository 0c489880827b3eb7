"""`PreflightOptions`: everything that steers one preflight run.

Built by ``llmos preflight`` from its flags, and by ``llmos server`` (embedded
mode) and ``llmos install`` (cluster mode) before they start.
"""

from __future__ import annotations

import enum
import os
from dataclasses import dataclass, field
from pathlib import Path

from llmos.preflight.nvml import NvmlReader

__all__ = ["Mode", "PreflightOptions", "Role", "default_data_dir"]


class Role(enum.StrEnum):
    """The node's role in a cluster, as on the requirements page."""

    SERVER = "server"
    WORKER = "worker"


class Mode(enum.StrEnum):
    """How LLMOS will run on the node.

    EMBEDDED (``llmos server``) runs a relaxed subset: hardware minimums warn
    instead of failing, and cluster-only checks are skipped.
    """

    CLUSTER = "cluster"
    EMBEDDED = "embedded"


def default_data_dir() -> Path:
    """``/var/lib/llmos`` as root, otherwise ``$XDG_DATA_HOME/llmos``."""
    if os.geteuid() == 0:
        return Path("/var/lib/llmos")
    xdg = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(xdg) / "llmos"


@dataclass(frozen=True)
class PreflightOptions:
    """Options of one preflight run. Every field has a working default."""

    role: Role = Role.SERVER
    """Role this node will take; it decides which ports must be free."""
    mode: Mode = Mode.CLUSTER
    """Cluster install or embedded server; embedded relaxes some checks."""
    data_dir: Path = field(default_factory=default_data_dir)
    """Data dir; disk space and speed are measured on its filesystem."""
    server: str | None = None
    """URL of an existing server; with ``token``, used to check that the hostname is unique."""
    token: str | None = None
    """Bearer token for ``server``."""
    ca_cert: Path | None = None
    """CA certificate to verify ``server``'s TLS; without it TLS is not verified (a warning)."""
    quick: bool = False
    """Skip the disk measurement, which takes several seconds."""
    root: Path = Path("/")
    """Where host files (os-release, /proc, /sys, /etc) are read from; tests use fixture trees."""
    api_port: int = 8443
    """Port of the LLMOS API and dashboard; embedded mode checks only this port."""
    is_root: bool | None = None
    """Whether to act as root; None means ask the OS (geteuid)."""
    nvml: NvmlReader | None = None
    """Where GPU readings come from; None means the real NVML library."""
    disk_seconds: float = 3.0
    """Time limit of each disk measurement."""

    @property
    def running_as_root(self) -> bool:
        """``is_root`` if set, else whether the process runs as uid 0."""
        return self.is_root if self.is_root is not None else os.geteuid() == 0
