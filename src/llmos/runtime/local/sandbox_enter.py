"""The first program inside the workload sandbox: bwrap runs it as ``python -I -S``, by path.

``sandbox_enter.py [--user UID:GID WRITABLE...] -- PROGRAM ARGS...``

- The workload's environment arrives packed in one variable
  (:data:`ENV`, JSON), so that neither bwrap, which runs outside the sandbox
  with the server's rights, nor this program reads a user's ``LD_PRELOAD`` or
  ``LD_LIBRARY_PATH``: only the program it ends in gets the environment back.
- With ``--user`` (the server runs as root): each writable folder, and all in
  it, is given to ``UID:GID`` (following no link, and leaving alone a file
  with other hard links, which may lie outside it); then it drops every
  capability, for good, and becomes ``UID:GID``, so the workload is not root
  to anything outside: not to root's files that no folder hides, not to
  root-only sockets (systemd's, Docker's), which would take its word that it
  is root.

It imports only the standard library (the sandbox shows Python's prefix, and
LLMOS's package as files): no LLMOS module, nothing from the environment.
"""

from __future__ import annotations

import ctypes
import json
import os
import stat
import sys

ENV = "LLMOS_SANDBOX_ENV"

_PR_CAPBSET_DROP = 24
_PR_SET_NO_NEW_PRIVS = 38
_PR_CAP_AMBIENT = 47
_PR_CAP_AMBIENT_CLEAR_ALL = 4
_CAPABILITY_VERSION_3 = 0x20080522


def own(top: str, uid: int, gid: int) -> None:
    """Give ``top`` and everything under it to ``uid:gid`` without following a link."""
    os.chown(top, uid, gid, follow_symlinks=False)
    for _path, dirs, files, fd in os.fwalk(top, follow_symlinks=False):
        for name in (*dirs, *files):
            try:
                st = os.stat(name, dir_fd=fd, follow_symlinks=False)
                if (st.st_uid, st.st_gid) == (uid, gid):
                    continue
                if not stat.S_ISDIR(st.st_mode) and st.st_nlink > 1:
                    continue  # another name of it may be outside this folder
                os.chown(name, uid, gid, dir_fd=fd, follow_symlinks=False)
            except OSError:
                continue  # gone meanwhile, or on a read-only mount inside it


def become(uid: int, gid: int) -> None:
    """Drop every capability (bounding, ambient and inheritable sets too), then be uid:gid."""
    libc = ctypes.CDLL(None, use_errno=True)
    prctl = libc.prctl
    prctl.argtypes = [ctypes.c_int, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong]

    def check(result: int, what: str) -> None:
        if result != 0:
            raise OSError(ctypes.get_errno(), f"{what}: {os.strerror(ctypes.get_errno())}")

    check(prctl(_PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0), "no_new_privs")
    with open("/proc/sys/kernel/cap_last_cap") as handle:
        last = int(handle.read())
    for cap in range(last + 1):
        check(prctl(_PR_CAPBSET_DROP, cap, 0, 0, 0), f"dropping capability {cap}")
    check(prctl(_PR_CAP_AMBIENT, _PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0), "ambient capabilities")
    os.setgroups([])
    os.setresgid(gid, gid, gid)
    os.setresuid(uid, uid, uid)  # clears the permitted and effective sets
    header = (ctypes.c_uint32 * 2)(_CAPABILITY_VERSION_3, 0)
    data = (ctypes.c_uint32 * 6)()  # effective, permitted, inheritable: all empty
    check(libc.capset(header, data), "capset")
    with open("/proc/self/status") as handle:
        caps = [line.split()[1] for line in handle if line.startswith("Cap")]
    if os.getresuid() != (uid, uid, uid) or any(int(value, 16) for value in caps):
        raise OSError(f"still privileged after dropping: uid {os.getresuid()}, caps {caps}")


def main(args: list[str]) -> None:
    cut = args.index("--")
    options, argv = args[:cut], args[cut + 1 :]
    packed = os.environ.get(ENV)
    env = json.loads(packed) if packed is not None else dict(os.environ)
    if options[:1] == ["--user"]:
        uid, gid = (int(part) for part in options[1].split(":"))
        for top in options[2:]:
            own(top, uid, gid)
        become(uid, gid)
    try:
        os.execvpe(argv[0], argv, env)
    except OSError as exc:
        sys.exit(f"llmos sandbox: cannot start {argv[0]!r}: {exc.strerror}")


if __name__ == "__main__":
    try:
        main(sys.argv[1:])
    except OSError as exc:
        sys.exit(f"llmos sandbox: {exc}")
