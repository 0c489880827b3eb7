"""A sandbox for the processes that run users' code in embedded mode (notebooks), by bubblewrap.

Without it a notebook runs as the server's own user, so its code can read
what the server can: the database, the server's keys and CA, every other
notebook's and volume's files, and (through ``/proc``) other processes'
environments. In the sandbox (``bwrap``, Debian's ``bubblewrap``):

- the host's filesystem is read-only, and what holds secrets is hidden under
  an empty tmpfs: the data dir, ``/root`` and the server user's home, its
  ``/run/user`` sockets, SSH host keys, ``/etc/shadow``, LLMOS's and
  Kubernetes' config and state, ``/var/log``;
- the workload's own folders (its volumes and its home) are bound back
  writable, and the programs it needs (Python's prefix, LLMOS's package, an
  install of code-server) read-only, with what is hidden inside them hidden
  again;
- it has its own PID and IPC namespaces (no other process is visible, so none
  can be signalled, traced or read), its own ``/dev`` (no disks; the NVIDIA
  devices only when it was given GPUs), ``/dev/shm`` and ``/tmp``;
- it has no capabilities, and is not root: a server that runs as root runs it
  as ``nobody`` (its writable folders are given to that user first), since a
  root without capabilities still owns every root file no folder hides and is
  let into root-only sockets (systemd's, Docker's); a server that runs as
  another user runs it as that user, in a user namespace;
- its environment reaches only the program it runs (:mod:`.sandbox_enter`):
  bwrap runs with the server's rights, so a user's ``LD_PRELOAD`` must not
  reach it.

The runtime still signals the whole process group (bwrap does not start a
session of its own), and ``--die-with-parent`` keeps the server's death
signal reaching what runs inside.
"""

from __future__ import annotations

import functools
import json
import logging
import os
import pwd
import shutil
import subprocess
import sys
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from llmos.runtime.local import sandbox_enter

__all__ = ["Confinement", "Sandbox", "exit_code", "seal_env"]

log = logging.getLogger(__name__)

# Host folders whose contents are private to root or the server's user.
_HIDDEN_DIRS = (
    "/root",
    "/run/user",
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
# What the first program inside needs, as root, before it becomes the workload's user.
_ENTRY_CAPS = ("CAP_CHOWN", "CAP_DAC_READ_SEARCH", "CAP_SETGID", "CAP_SETUID", "CAP_SETPCAP")


@dataclass(frozen=True)
class Confinement:
    """What one workload may touch besides the read-only host."""

    writable: tuple[Path, ...]  # bound read-write (they must exist)
    readable: tuple[Path, ...] = ()  # bound read-only, where hidden otherwise
    gpus: bool = False  # the NVIDIA device files
    cwd: Path | None = None


def workload_user() -> tuple[int, int] | None:
    """Whom a root server's workloads run as (``nobody``); None when the server is not root."""
    if os.geteuid() != 0:
        return None
    try:
        entry = pwd.getpwnam("nobody")
    except KeyError:
        return (65534, 65534)
    return (entry.pw_uid, entry.pw_gid)


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
            if workload_user() is not None:  # root: no user namespace to allow
                return f"bubblewrap cannot make a sandbox here ({why[0]})"
            return (
                f"bubblewrap cannot make a sandbox here ({why[0]}): allow unprivileged "
                "user namespaces (sysctl kernel.unprivileged_userns_clone=1)"
            )
        return None

    @property
    def usable(self) -> bool:
        return self.problem is None

    def unreadable(self, path: Path) -> Path | None:
        """The first of ``path``'s folders, ``path`` and (a folder) what is directly in it that
        the workload's user cannot read (a root server's: files root made 0600, as
        ``save_pretrained`` does); None when it can read them all, or runs as the server."""
        user = workload_user()
        if user is None:
            return None
        path = path.absolute()
        private = self._private()
        for folder in reversed(path.parents):
            if any(folder.is_relative_to(h) for h in private):
                break  # from here down the sandbox makes the folders, open to all
            if not _may(folder, user, 0o1):
                return folder
        try:
            inside = sorted(path.iterdir()) if path.is_dir() else []
        except OSError:
            return path
        for item in (path, *inside):
            if not _may(item, user, 0o5 if item.is_dir() else 0o4):
                return item
        return None

    def _private(self) -> list[Path]:
        """Folders the sandbox hides, or makes its own (``/tmp``): what is in them is not shown."""
        return [Path("/tmp"), *_existing([*map(Path, _HIDDEN_DIRS), Path.home(), self.data_dir])]

    def shows(self, program: Path) -> bool:
        """Whether a workload in the sandbox can run ``program``: it lies outside what the
        sandbox hides (the server's home, its data, ``/tmp``...) and its user may execute it."""
        program = program.absolute()
        if any(program.is_relative_to(folder) for folder in self._private()):
            return False
        user = workload_user()
        return user is None or _may(program, user, 0o1)

    def wrap(self, argv: Sequence[str], confinement: Confinement) -> tuple[str, ...]:
        """``argv`` run inside the sandbox: the ``bwrap`` command line.

        Start it with :func:`seal_env`'s environment, never the workload's own.
        """
        assert self.program
        user = workload_user()
        args = [self.program, "--die-with-parent"]
        if user is None:
            args += ["--unshare-user", "--cap-drop", "ALL"]
        else:  # root: the entry program drops the rest once it is the workload's user
            args += ["--cap-drop", "ALL"]
            for cap in _ENTRY_CAPS:
                args += ["--cap-add", cap]
        args += [
            "--unshare-pid",
            "--unshare-ipc",
            "--ro-bind",
            "/",
            "/",
            "--dev",
            "/dev",
            "--perms",
            "1777",
            "--tmpfs",
            "/dev/shm",
            "--proc",
            "/proc",
        ]
        mounts = _Mounts(args)
        mounts.tmpfs(Path("/tmp"), "1777")
        home = Path.home()
        hidden = _existing([*(Path(p) for p in _HIDDEN_DIRS), home, self.data_dir])
        for folder in hidden:
            # Its HOME when the workload has none of its own (a model's replica): writable.
            mounts.tmpfs(folder, "1777" if folder == home else None)
        private = [*hidden, Path("/tmp")]  # its own /tmp: what it needs from there is bound in
        shown = [
            path
            for path in _existing(_needed(confinement.readable))
            if path not in hidden and any(path.is_relative_to(h) for h in private)
        ]
        # Hidden again where a folder shown contains it (a data dir in the server's home).
        again = [h for h in hidden if any(h != s and h.is_relative_to(s) for s in shown)]
        for path in sorted({*shown, *again}, key=lambda p: p.parts):
            if path in shown:
                mounts.bind("--ro-bind", path)
            else:
                mounts.tmpfs(path)
        for file in _HIDDEN_FILES:
            args += ["--ro-bind-try", "/dev/null", file]
        for path in confinement.writable:
            mounts.bind("--bind", path)
        if confinement.gpus:
            for device in _gpu_devices():
                args += ["--dev-bind", device, device]
        if confinement.cwd is not None:
            args += ["--chdir", str(confinement.cwd)]
        entry = [sys.executable, "-I", "-S", sandbox_enter.__file__]
        if user is not None:
            entry += ["--user", f"{user[0]}:{user[1]}", *map(str, confinement.writable)]
        return (*args, "--", *entry, "--", *argv)


class _Mounts:
    """Mounts in order, each folder bwrap must make on a tmpfs of the sandbox's made first,
    searchable by all (bwrap makes them 0700: the workload's user could not reach its own
    volume under the hidden data dir)."""

    def __init__(self, args: list[str]) -> None:
        self.args = args
        self.made: dict[Path, bool] = {Path("/"): False}  # mount point -> whether a tmpfs
        self.folders: set[Path] = set()

    def tmpfs(self, path: Path, perms: str | None = None) -> None:
        self._folders_to(path)
        self.args += [*(["--perms", perms] if perms else []), "--tmpfs", str(path)]
        self.made[path] = True

    def bind(self, flag: str, path: Path) -> None:
        self._folders_to(path)
        self.args += [flag, str(path), str(path)]
        self.made[path] = False

    def _folders_to(self, path: Path) -> None:
        under = max(
            (m for m in self.made if m != path and path.is_relative_to(m)),
            key=lambda m: len(m.parts),
        )
        if not self.made[under]:
            return  # a host folder: its folders are there
        for folder in reversed(path.parents):
            if folder != under and folder.is_relative_to(under) and folder not in self.folders:
                self.args += ["--perms", "0755", "--dir", str(folder)]
                self.folders.add(folder)


def seal_env(argv: Sequence[str], env: Mapping[str, str]) -> dict[str, str]:
    """The environment to start ``argv`` with: for a sandbox's command line, ``env`` packed
    into one variable that only the program inside unpacks (bwrap itself runs outside,
    with the server's rights: a user's ``LD_PRELOAD`` or ``LD_LIBRARY_PATH`` must not load
    into it); any other command line gets ``env`` as it is."""
    if _sandboxed(argv):
        return {sandbox_enter.ENV: json.dumps(dict(env))}
    return dict(env)


def exit_code(argv: Sequence[str], code: int) -> int:
    """``code`` as Python reports it for what ran inside: bwrap exits with 128 + N when its
    program died of signal N, which Python calls -N (so an OOM kill is still a SIGKILL)."""
    if code > 128 and _sandboxed(argv):
        return 128 - code
    return code


def _sandboxed(argv: Sequence[str]) -> bool:
    """Whether ``argv`` is a sandbox's command line (:meth:`Sandbox.wrap`'s)."""
    return bool(argv) and Path(argv[0]).name == "bwrap"


def _may(path: Path, user: tuple[int, int], wanted: int) -> bool:
    """Whether ``user`` (uid, gid, no other groups) has the ``wanted`` bits (``rwx`` as 0o7) on
    ``path``, following a link."""
    try:
        st = path.stat()
    except OSError:
        return True  # a dangling link: nothing to read either way
    shift = 6 if st.st_uid == user[0] else 3 if st.st_gid == user[1] else 0
    return (st.st_mode >> shift) & wanted == wanted


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
