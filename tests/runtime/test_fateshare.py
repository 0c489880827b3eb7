"""The fate-sharing wrapper: a command's whole process tree goes with the server."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import psutil

WRAP = [sys.executable, "-m", "llmos.runtime.local.fateshare", "--grace", "5", "--"]
# A "server" that starts the wrapper as the runtime does (own session, death signal
# SIGKILL), prints the wrapper's pid, and waits to be killed.
SERVER = """
import ctypes, os, signal, subprocess, sys, time
prctl = ctypes.CDLL(None).prctl
def death_signal():
    prctl(1, signal.SIGKILL, 0, 0, 0)
child = subprocess.Popen(sys.argv[1:], start_new_session=True, preexec_fn=death_signal)
print(child.pid, flush=True)
time.sleep(600)
"""
TREE = "sleep 300 & sleep 300 & echo started; wait"


def _group(pgid: int) -> list[psutil.Process]:
    found = []
    for proc in psutil.process_iter(["pid"]):
        try:
            if os.getpgid(proc.pid) == pgid and proc.status() != psutil.STATUS_ZOMBIE:
                found.append(proc)
        except (ProcessLookupError, psutil.NoSuchProcess):
            continue
    return found


def _wait_for_group(pgid: int, size: int) -> list[psutil.Process]:
    deadline = time.monotonic() + 10
    while len(members := _group(pgid)) < size:
        assert time.monotonic() < deadline, f"group {pgid} has {len(members)} processes"
        time.sleep(0.05)
    return members


def test_kill_9_of_the_server_takes_the_whole_tree_down() -> None:
    server = subprocess.Popen(
        [sys.executable, "-c", SERVER, *WRAP, "sh", "-c", TREE], stdout=subprocess.PIPE
    )
    try:
        assert server.stdout is not None
        wrapper = int(server.stdout.readline())
        members = _wait_for_group(wrapper, 4)  # wrapper, sh, two sleeps
        server.kill()
        server.wait()
        _gone, alive = psutil.wait_procs(members, 10)
        assert alive == [], alive
    finally:
        if server.poll() is None:
            server.kill()


def test_the_command_s_exit_code_comes_through_and_leftovers_go() -> None:
    wrapper = subprocess.Popen(
        [*WRAP, "sh", "-c", "sleep 300 & echo $! ; exit 3"], stdout=subprocess.PIPE
    )
    assert wrapper.stdout is not None
    leftover = psutil.Process(int(wrapper.stdout.readline()))
    assert wrapper.wait(10) == 3
    _gone, alive = psutil.wait_procs([leftover], 10)
    assert alive == []


def test_sigterm_to_the_group_stops_everything() -> None:
    wrapper = subprocess.Popen([*WRAP, "sh", "-c", TREE], start_new_session=True)
    try:
        members = _wait_for_group(wrapper.pid, 4)
        os.killpg(wrapper.pid, signal.SIGTERM)
        _gone, alive = psutil.wait_procs(members, 10)
        assert alive == []
    finally:
        if wrapper.poll() is None:
            os.killpg(wrapper.pid, signal.SIGKILL)
