"""Run a command whose whole process group dies with the LLMOS server.

``python -m llmos.runtime.local.fateshare [--grace S] -- COMMAND...`` is put in
front of a replica's command by controllers whose programs fork helpers of
their own (``ray start --block`` starts the GCS, a raylet, the dashboard and
agents). The runtime's ``PR_SET_PDEATHSIG`` reaches only its direct child, so
after a ``kill -9`` of the server those grandchildren would live on until the
next start's survivor sweep. This wrapper is that direct child; it swaps its
death signal for a catchable SIGTERM and, when the server dies, stops the
command (SIGTERM, then SIGKILL to the whole group two seconds later).

When the runtime stops the replica it signals the whole group itself; the
wrapper then waits for the command and clears up what is left of the group.
When the command exits on its own, the wrapper kills the rest of the group and
exits with the command's code, so the supervisor sees the real exit.
"""

from __future__ import annotations

import ctypes
import os
import signal
import subprocess
import sys
import time
from types import FrameType

from llmos.runtime.local.process import group_members

_PR_SET_PDEATHSIG = 1


def _kill_others(sig: int) -> None:
    """Signal every member of our process group except ourselves."""
    me = os.getpid()
    for pid in group_members(os.getpgrp()):
        if pid != me:
            try:
                os.kill(pid, sig)
            except (ProcessLookupError, PermissionError):
                continue


def _parse(argv: list[str]) -> tuple[float, list[str]]:
    grace = 10.0
    if argv[:1] == ["--grace"] and len(argv) > 1:
        grace, argv = float(argv[1]), argv[2:]
    if argv[:1] == ["--"]:
        argv = argv[1:]
    if not argv:
        raise SystemExit("usage: python -m llmos.runtime.local.fateshare [--grace S] -- COMMAND...")
    return grace, argv


def main(argv: list[str]) -> int:
    grace, command = _parse(argv)
    if os.getpgrp() != os.getpid():
        os.setpgid(0, 0)  # the group we clear up must be ours alone (the runtime starts us so)
    parent = os.getppid()
    child: subprocess.Popen[bytes] | None = None
    stopping = False

    def on_signal(signum: int, frame: FrameType | None) -> None:
        nonlocal stopping
        if stopping:
            return
        stopping = True
        wait = grace
        if child is not None and os.getppid() != parent:
            # The server died: nobody else stops the command, and nobody waits for it.
            child.send_signal(signal.SIGTERM)
            wait = min(grace, 2.0)
        deadline = time.monotonic() + wait
        while child is not None and child.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        os.killpg(os.getpgrp(), signal.SIGKILL)  # the rest of the group, and us

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    if sys.platform.startswith("linux"):
        prctl = ctypes.CDLL(None, use_errno=True).prctl
        prctl(_PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
        if os.getppid() != parent:  # the server died before the new death signal was set
            return 1
    child = subprocess.Popen(command)  # same process group: it is ours to clear up
    code = child.wait()
    _kill_others(signal.SIGTERM)
    deadline = time.monotonic() + min(grace, 2.0)
    while len(group_members(os.getpgrp())) > 1 and time.monotonic() < deadline:
        time.sleep(0.05)
    _kill_others(signal.SIGKILL)
    return code if code >= 0 else 128 - code


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
