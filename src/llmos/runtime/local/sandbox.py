"""A sandbox for the processes that run users' code in embedded mode (notebooks), by bubblewrap.

Without it a notebook runs as the server's own user, so its code can read
what the server can: the database, the server's keys and CA, every other
notebook's and volume's files, and (through ``/proc``) other processes'
environments. In the sandbox (``bwrap``, Debian's ``bubblewrap``):

- the host's filesystem is read-only, and what holds secrets is hidden under
  an empty tmpfs: the data dir, ``/root`` and the server user's home, SSH host
  keys, ``/etc/shadow``, LLMOS's and Kubernetes' config and state, ``/var/log``;
- the workload's own folders (its volumes and its home) are bound back
  writable, and the programs it needs (Python's prefix, LLMOS's package, an
  install of code-server) read-only;
- it has its own PID and IPC namespaces (no other process is visible, so none
  can be signalled, traced or read), its own ``/dev`` (no disks; the NVIDIA
  devices only when it was given GPUs) and ``/tmp``;
- it runs in a user namespace with no capabilities, and cannot make another.

The network is shared: the workload listens on 127.0.0.1 for the proxy, and
reaches other loopback ports only as any local process does (engines and
notebooks there each want their own key or secret).

The runtime still signals the whole process group (bwrap does not start a
session of its own), and ``--die-with-parent`` keeps the server's death
signal reaching what runs inside.
"""

from __future__ import annotations

import functools
import logging
import os
import shutil
import subprocess
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

__all__ = ["Confinement", "Sandbox", "exit_code"]

log = logging.getLogger(__name__)

# Host folders whose contents are private to root or the server's user.
_HIDDEN_DIRS = (
    "/root",
    "/etc/ssh",
    "/etc/llmos",
    "/etc/rancher",
    "/etc/kubernetes",
    "/var/lib/rancher",
    "/var/lib/kubelet",
    "/var/lib/llmos",
    "/var/log",
)
_HIDDEN_FILES = ("/etc/shadow", "/etc/shadow-", "/etc/gshadow", "/etc/gshadow-")
_GPU_DEVICES = ("nvidiactl", "nvidia-uvm", "nvidia-uvm-tools", "nvidia-modeset", "nvidia-caps")


@dataclass(frozen=True)
class Confinement:
    """What one workload may touch besides the read-only host."""

    writable: tuple[Path, ...]  # bound read-write (they must exist)
    readable: tuple[Path, ...] = ()  # bound read-only, where hidden otherwise
    gpus: bool = False  # the NVIDIA device files
    cwd: Path | None = None


class Sandbox:
    """Wraps a command line in bubblewrap, or reports why it cannot."""

    def __init__(self, data_dir: Path, program: str | None = None) -> None:
        self.data_dir = data_dir.absolute()
        self.program = program if program is not None else shutil.which("bwrap")

    @functools.cached_property
    def problem(self) -> str | None:
        """None if the sandbox works here; else why not, and what to install or enable."""
        if not self.program:
            return (
                "bubblewrap is not installed: install it (apt install bubblewrap, or "
                "scripts/setup) so notebooks cannot read the server's data"
            )
        probe = self.wrap(["true"], Confinement(writable=()))
        try:
            done = subprocess.run(probe, capture_output=True, timeout=30, check=False)
        except (OSError, subprocess.TimeoutExpired) as exc:
            return f"bubblewrap ({self.program}) does not run: {exc}"
        if done.returncode != 0:
            why = done.stderr.decode(errors="replace").strip().splitlines()[-1:] or ["no output"]
            return (
                f"bubblewrap cannot make a sandbox here ({why[0]}): allow unprivileged "
                "user namespaces (sysctl kernel.unprivileged_userns_clone=1)"
            )
        return None

    @property
    def usable(self) -> bool:
        return self.problem is None

    def wrap(self, argv: Sequence[str], confinement: Confinement) -> tuple[str, ...]:
        """``argv`` run inside the sandbox: the ``bwrap`` command line."""
        assert self.program
        args = [
            self.program,
            "--die-with-parent",
            "--unshare-user",
            "--unshare-pid",
            "--unshare-ipc",
            "--cap-drop",
            "ALL",
            "--ro-bind",
            "/",
            "/",
            "--dev",
            "/dev",
            "--proc",
            "/proc",
            "--tmpfs",
            "/tmp",
        ]
        hidden = [Path(p) for p in _HIDDEN_DIRS] + [Path.home(), self.data_dir]
        for folder in _existing(hidden):
            args += ["--tmpfs", str(folder)]
        hidden.append(Path("/tmp"))  # its own, empty: what it needs from there is bound in
        for file in _HIDDEN_FILES:
            args += ["--ro-bind-try", "/dev/null", file]
        for path in _existing(_needed(confinement.readable)):
            if any(path.is_relative_to(h) for h in hidden):
                args += ["--ro-bind", str(path), str(path)]
        for path in confinement.writable:
            args += ["--bind", str(path), str(path)]
        if confinement.gpus:
            for device in _gpu_devices():
                args += ["--dev-bind", device, device]
        if confinement.cwd is not None:
            args += ["--chdir", str(confinement.cwd)]
        return (*args, "--", *argv)


def exit_code(argv: Sequence[str], code: int) -> int:
    """``code`` as Python reports it for what ran inside: bwrap exits with 128 + N when its
    program died of signal N, which Python calls -N (so an OOM kill is still a SIGKILL)."""
    if code > 128 and argv and Path(argv[0]).name == "bwrap":
        return 128 - code
    return code


def _needed(extra: Iterable[Path]) -> list[Path]:
    """What every sandboxed Python program reads: its prefixes and LLMOS's package."""
    import llmos

    package = Path(llmos.__file__).resolve().parent.parent
    paths = {Path(sys.prefix), Path(sys.base_prefix), Path(sys.executable).resolve().parent}
    return sorted({*paths, package, *extra})


def _existing(paths: Iterable[Path]) -> list[Path]:
    return [p for p in dict.fromkeys(paths) if p.exists()]


def _gpu_devices() -> list[str]:
    try:
        names = sorted(os.listdir("/dev"))
    except OSError:
        return []
    return [
        f"/dev/{name}"
        for name in names
        if (name.startswith("nvidia") and name[6:].isdigit()) or name in _GPU_DEVICES
    ]
