"""Real processes standing in for the containers that kwok does not run.

kwok gives a pod a loopback IP and marks it Running and Ready, but runs nothing.
A test that needs what the container would serve (an engine, JupyterLab, a Ray
head) starts the real program at the pod's address instead, and LLMOS reaches it
exactly as it would reach the pod.
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

from kubenodes import wait_until


@contextmanager
def stand_in(
    what: str,
    argv: list[str],
    log: Path,
    ready_url: str,
    *,
    env: dict[str, str] | None = None,
    cwd: Path | None = None,
    grace: float = 10.0,
) -> Iterator[subprocess.Popen[bytes]]:
    """Run ``argv`` until ``ready_url`` answers 200; stop it (by PID) at the end.

    A process that exits first fails the test at once, with the end of its log.
    """
    with log.open("wb") as out:
        proc = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, env=env, cwd=cwd)

    def up() -> bool:
        if proc.poll() is not None:
            pytest.fail(f"the stand-in {what} exited:\n{log.read_text()[-3000:]}")
        try:
            return httpx.get(ready_url, timeout=2).status_code == 200
        except httpx.HTTPError:
            return False

    try:
        wait_until(up, f"the stand-in {what} to answer", timeout=120)
        yield proc
    finally:
        proc.terminate()
        try:
            proc.wait(grace)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
