"""Helpers for local-runtime tests: a tiny HTTP app, status recording, polling, process checks."""

from __future__ import annotations

import asyncio
import contextlib
import re
import sys
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TypeVar

import psutil

from llmos.runtime.base import HealthCheck, Phase, ReplicaSpec, ReplicaStatus
from llmos.runtime.local import LocalRuntime, Timing

PY = sys.executable
T = TypeVar("T")

FAST = Timing(
    backoff_initial=0.05,
    backoff_max=0.4,
    crashloop_window=60.0,
    unhealthy_restart_after=0.5,
    startup_probe_period=0.05,
    log_drain_seconds=0.5,
    survivor_grace=1.0,
    oom_poll_seconds=0.1,
    oom_settle_seconds=0.3,
)
FAST_HEALTH = HealthCheck(
    path="/health",
    period_seconds=0.1,
    timeout_seconds=1.0,
    failure_threshold=2,
    startup_timeout_seconds=30.0,
)

# A tiny HTTP server: /health (503 after /sick), /env (its environment), /say/WORD (prints WORD).
APP = r"""
import http.server, json, os, sys

port = int(sys.argv[1])
print(f"listening on {port} greeting={os.environ.get('GREETING')}", flush=True)
healthy = [True]

class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        code, body = 200, b"ok"
        if self.path == "/health":
            code = 200 if healthy[0] else 503
        elif self.path == "/env":
            body = json.dumps(dict(os.environ)).encode()
        elif self.path.startswith("/say/"):
            print(self.path[5:], flush=True)
        elif self.path == "/sick":
            healthy[0] = False
        else:
            code = 404
        self.send_response(code)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass

http.server.HTTPServer(("127.0.0.1", port), Handler).serve_forever()
"""


def write_app(directory: Path) -> Path:
    path = directory / "app.py"
    path.write_text(APP)
    return path


def app_spec(
    app: Path, key: str = "modelservices/default/demo/0", **changes: object
) -> ReplicaSpec:
    spec = ReplicaSpec(
        key=key, command=(PY, str(app), "{port}"), health=FAST_HEALTH, grace_seconds=3.0
    )
    return replace(spec, **changes)  # type: ignore[arg-type]


def script_spec(key: str, code: str, **changes: object) -> ReplicaSpec:
    """A replica running ``python -c code``, without port or health check unless changed."""
    spec = ReplicaSpec(key=key, command=(PY, "-c", code), wants_port=False, health=None)
    return replace(spec, **changes)  # type: ignore[arg-type]


@dataclass
class Seen:
    at: float
    status: ReplicaStatus
    spec: ReplicaSpec


class Recorder:
    """An on_status handler that keeps every status it is given, with the loop time."""

    def __init__(self) -> None:
        self.seen: list[Seen] = []

    def __call__(self, status: ReplicaStatus, spec: ReplicaSpec) -> None:
        self.seen.append(Seen(asyncio.get_running_loop().time(), status, spec))

    def phases(self, key: str) -> list[Phase]:
        return [s.status.phase for s in self.seen if s.status.key == key]


async def until(check: Callable[[], T | None], what: str, timeout: float = 20.0) -> T:
    """Poll ``check`` until it returns something truthy, or fail after ``timeout`` seconds."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        value = check()
        if value:
            return value
        if loop.time() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        await asyncio.sleep(0.02)


def status_where(
    runtime: LocalRuntime, key: str, predicate: Callable[[ReplicaStatus], bool]
) -> Callable[[], ReplicaStatus | None]:
    def check() -> ReplicaStatus | None:
        status = runtime.status(key)
        return status if status is not None and predicate(status) else None

    return check


def gone(proc: psutil.Process) -> bool:
    """Whether ``proc`` (pid + create time) has ended; a zombie left to PID 1 counts as ended."""
    try:
        return not proc.is_running() or proc.status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


async def wait_gone(proc: psutil.Process, timeout: float = 10.0) -> None:
    await until(lambda: gone(proc), f"pid {proc.pid} to end", timeout)


def delays_in(messages: list[str]) -> list[float]:
    """The ``restarting in Xs`` delays named in status messages."""
    return [float(m) for text in messages for m in re.findall(r"restarting in ([0-9.]+)s", text)]


# The event loop the integration tests run on; conftest switches it to uvloop (what
# `llmos server` uses) for a second pass.
LOOP_FACTORY: list[Callable[[], asyncio.AbstractEventLoop] | None] = [None]


def drive(coro: Awaitable[T]) -> T:
    """``asyncio.run`` on the loop implementation chosen for this test."""

    async def main() -> T:
        return await coro

    with asyncio.Runner(loop_factory=LOOP_FACTORY[0]) as runner:
        return runner.run(main())


def run(tmp_path: Path, body: Callable[[LocalRuntime], Awaitable[T]], timing: Timing = FAST) -> T:
    """Run ``body`` against a started runtime in tmp_path, always stopping the runtime."""

    async def main() -> T:
        runtime = LocalRuntime(tmp_path / "state", tmp_path / "logs", timing=timing)
        await runtime.start()
        try:
            return await asyncio.wait_for(body(runtime), 90)
        finally:
            await runtime.stop()

    return drive(main())


async def printed(runtime: LocalRuntime, key: str, wanted: str | Callable[[str], bool]) -> str:
    """Follow the replica ``key``'s log until it prints ``wanted`` (a line, or a test of one);
    that line."""
    async with contextlib.aclosing(runtime.logs(key, follow=True)) as lines:
        async for line in lines:
            if line == wanted if isinstance(wanted, str) else wanted(line):
                return line
    raise AssertionError(f"{key} ended without printing {wanted!r}")
