"""Processes for the gateway benchmark: start pinned, wait until ready, read CPU, stop.

``run.py`` uses it for the stub upstream and LiteLLM, and for reading (and
pinning) an LLMOS gateway that someone else started. Everything started here
gets its own session (process group), and :meth:`Managed.stop` ends exactly
that group: SIGTERM, then SIGKILL after a bound. Nothing is found or killed by
name.

CPU time comes from ``/proc/PID/stat`` (utime + stime, in clock ticks of
10 ms), summed over the process and its live descendants.
"""

from __future__ import annotations

import os
import signal
import socket
import ssl
import subprocess
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

_TICKS_PER_SECOND = os.sysconf("SC_CLK_TCK")


class BenchError(Exception):
    """A benchmark setup problem; the message says what to fix."""


@dataclass
class Managed:
    """A process this benchmark started, in its own process group."""

    name: str
    process: subprocess.Popen[bytes]
    log_path: Path

    @property
    def pid(self) -> int:
        return self.process.pid

    def running(self) -> bool:
        return self.process.poll() is None

    def log_tail(self, lines: int = 30) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    def stop(self, grace_s: float = 10.0) -> None:
        """SIGTERM the group, wait up to ``grace_s``, then SIGKILL it."""
        if self.process.poll() is not None:
            return
        try:
            os.killpg(self.process.pid, signal.SIGTERM)
        except ProcessLookupError:
            return
        try:
            self.process.wait(timeout=grace_s)
        except subprocess.TimeoutExpired:
            try:
                os.killpg(self.process.pid, signal.SIGKILL)
            except ProcessLookupError:
                return
            self.process.wait(timeout=grace_s)


def start(
    name: str,
    argv: list[str],
    *,
    log_path: Path,
    cpu: int | None,
    env: dict[str, str] | None = None,
    cwd: Path | None = None,
) -> Managed:
    """Start ``argv`` under ``taskset -c CPU`` (unless ``cpu`` is None), logging to ``log_path``.

    taskset execs the command, so the PID is the program's own.
    """
    command = ["taskset", "-c", str(cpu), *argv] if cpu is not None else argv
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            command,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            env=env,
            cwd=cwd,
            start_new_session=True,
        )
    return Managed(name, process, log_path)


def ensure_port_free(port: int, what: str) -> None:
    """Refuse a busy port: something else answering there would be measured instead."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError as exc:
            raise BenchError(
                f"port {port} on 127.0.0.1 for the {what} is in use ({exc}); "
                f"stop what listens there or pass another --{what}-port"
            ) from exc


def wait_ready(
    managed: Managed,
    url: str,
    timeout_s: float,
    context: ssl.SSLContext | None = None,
) -> float:
    """Poll ``url`` until it answers 200; return the seconds it took.

    Fails at once if the process exits, and after ``timeout_s`` otherwise.
    """
    started = time.monotonic()
    deadline = started + timeout_s
    last = "no answer yet"
    while time.monotonic() < deadline:
        if not managed.running():
            raise BenchError(
                f"{managed.name} exited with code {managed.process.returncode} "
                f"before it was ready; its log ends:\n{managed.log_tail()}"
            )
        try:
            with urllib.request.urlopen(url, timeout=2, context=context) as response:
                if response.status == 200:
                    return time.monotonic() - started
                last = f"HTTP {response.status}"
        except (urllib.error.URLError, OSError) as exc:
            last = str(exc)
        time.sleep(0.2)
    raise BenchError(
        f"{managed.name} did not answer 200 on {url} within {timeout_s:.0f} s "
        f"(last: {last}); its log ends:\n{managed.log_tail()}"
    )


def _stat_fields(pid: int) -> list[str]:
    # The command name (field 2) may hold spaces and parentheses; split after the last ')'.
    text = Path(f"/proc/{pid}/stat").read_text()
    return text[text.rindex(")") + 2 :].split()


def _children(pid: int) -> list[int]:
    found: list[int] = []
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            if int(_stat_fields(int(entry.name))[1]) == pid:
                found.append(int(entry.name))
        except (OSError, ValueError, IndexError):
            continue
    return found


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of ``pid`` and its live descendants."""
    total_ticks = 0
    stack = [pid]
    while stack:
        current = stack.pop()
        try:
            fields = _stat_fields(current)
        except OSError:
            if current == pid:
                raise
            continue
        # After the split, field 14 (utime) is index 11 and field 15 (stime) index 12.
        total_ticks += int(fields[11]) + int(fields[12])
        stack.extend(_children(current))
    return total_ticks / _TICKS_PER_SECOND


def rss_mb(pid: int) -> float:
    """VmRSS of ``pid`` alone, in MiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def pin_threads(pid: int, cpus: set[int]) -> dict[int, set[int]]:
    """Pin every thread of ``pid`` to ``cpus`` (like ``taskset -a -p``); return the old masks."""
    previous: dict[int, set[int]] = {}
    for entry in os.scandir(f"/proc/{pid}/task"):
        tid = int(entry.name)
        try:
            previous[tid] = os.sched_getaffinity(tid)
            os.sched_setaffinity(tid, cpus)
        except ProcessLookupError:
            continue
    return previous


def restore_threads(previous: dict[int, set[int]]) -> None:
    """Put back the masks :func:`pin_threads` returned (threads gone since are skipped)."""
    for tid, cpus in previous.items():
        try:
            os.sched_setaffinity(tid, cpus)
        except (ProcessLookupError, OSError):
            continue
