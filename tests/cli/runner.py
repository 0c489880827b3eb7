"""Run the real ``llmos`` CLI as a user would: a subprocess, its own config dir, no terminal."""

from __future__ import annotations

import fcntl
import os
import pty
import queue
import select
import struct
import subprocess
import sys
import termios
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import yaml

from server import ADMIN_PASSWORD, RunningServer


@dataclass(frozen=True)
class Result:
    code: int
    stdout: str
    stderr: str


def _environment(config_home: Path, env: dict[str, str] | None) -> dict[str, str]:
    """The test's environment, minus anything that would change the CLI's behaviour
    behind the test's back (LLMOS_*, EDITOR, VISUAL, COLUMNS, colour switches)."""
    hidden = ("EDITOR", "VISUAL", "COLUMNS", "NO_COLOR", "FORCE_COLOR")
    clean = {k: v for k, v in os.environ.items() if not k.startswith("LLMOS_") and k not in hidden}
    clean["XDG_CONFIG_HOME"] = str(config_home)
    return {**clean, **(env or {})}


def run_cli(
    config_home: Path,
    *args: str,
    stdin: str = "",
    env: dict[str, str] | None = None,
    timeout: float = 60,
    cwd: Path | None = None,
) -> Result:
    """``llmos ARGS`` with stdin from a pipe, so the CLI sees no terminal and cannot prompt."""
    proc = subprocess.run(
        [sys.executable, "-m", "llmos", *args],
        input=stdin,
        capture_output=True,
        text=True,
        env=_environment(config_home, env),
        timeout=timeout,
        cwd=cwd,
    )
    return Result(proc.returncode, proc.stdout, proc.stderr)


def start_cli(config_home: Path, *args: str) -> subprocess.Popen[str]:
    """``llmos ARGS`` as a process of its own (no terminal), its output readable as it comes."""
    return subprocess.Popen(
        [sys.executable, "-m", "llmos", *args],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=_environment(config_home, None),
    )


def line_with(stream: IO[str], text: str, timeout: float) -> str | None:
    """Read ``stream`` up to the first line holding ``text``; that line, or None if it has not
    come within ``timeout`` seconds."""
    found: queue.Queue[str] = queue.Queue()

    def read() -> None:
        for line in stream:
            if text in line:
                found.put(line)
                return

    threading.Thread(target=read, daemon=True).start()
    try:
        return found.get(timeout=timeout)
    except queue.Empty:
        return None


def run_in_terminal(
    config_home: Path,
    *args: str,
    prompt: str = "",
    answer: str = "",
    columns: int = 80,
    timeout: float = 60,
    dialogue: list[tuple[str, str]] | None = None,
) -> tuple[int, str]:
    """``llmos ARGS`` on a colour terminal ``columns`` wide, typing ``answer`` at ``prompt``
    (or each answer of ``dialogue`` at its prompt, in turn, each prompt after the last).

    Returns the exit code and everything the terminal showed, escape codes included.
    """
    turns = [(p.encode(), a.encode()) for p, a in (dialogue or [(prompt, answer)])]
    leader, follower = pty.openpty()
    fcntl.ioctl(follower, termios.TIOCSWINSZ, struct.pack("HHHH", 24, columns, 0, 0))
    proc = subprocess.Popen(
        [sys.executable, "-m", "llmos", *args],
        stdin=follower,
        stdout=follower,
        stderr=follower,
        env=_environment(config_home, {"TERM": "xterm-256color"}),
    )
    os.close(follower)
    shown, seen = b"", 0  # seen: where the next prompt is looked for
    deadline = time.monotonic() + timeout
    try:
        while (left := deadline - time.monotonic()) > 0:
            if not select.select([leader], [], [], left)[0]:
                continue
            try:
                chunk = os.read(leader, 4096)
            except OSError:  # EIO: the CLI exited and closed the terminal
                break
            if not chunk:
                break
            shown += chunk
            if turns and (at := shown.find(turns[0][0], seen)) >= 0:
                os.write(leader, turns[0][1] + b"\n")
                seen = at + len(turns.pop(0)[0])
        return proc.wait(max(deadline - time.monotonic(), 1)), shown.decode(errors="replace")
    finally:
        os.close(leader)
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def assert_fails(result: Result, code: int, *fragments: str) -> str:
    """The user sees exactly one plain ``error: …`` line with these words, and no traceback."""
    assert result.code == code, result
    assert "Traceback" not in result.stderr, result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1, result.stderr
    for fragment in fragments:
        assert fragment in errors[0], result.stderr
    return errors[0]


@dataclass(frozen=True)
class CLI:
    """One user's CLI: every call shares this config dir (credentials, CA)."""

    config_home: Path

    def __call__(self, *args: str, **kwargs: Any) -> Result:
        return run_cli(self.config_home, *args, **kwargs)

    @property
    def credentials_path(self) -> Path:
        return self.config_home / "llmos" / "credentials.yaml"

    @property
    def ca_path(self) -> Path:
        return self.config_home / "llmos" / "ca.crt"

    def credentials(self) -> dict[str, Any]:
        data: dict[str, Any] = yaml.safe_load(self.credentials_path.read_text())
        return data

    def login(self, server: RunningServer, *extra: str, password: str = ADMIN_PASSWORD) -> Result:
        return self(
            "login",
            server.url,
            "--ca-cert",
            server.ca,
            "--password-stdin",
            *extra,
            stdin=password + "\n",
        )

    def first_login(self, server: RunningServer) -> Result:
        """Log in to a new server with its one-time password, choosing ADMIN_PASSWORD."""
        return self.login(
            server, "--new-password", ADMIN_PASSWORD, password=server.bootstrap_password()
        )
