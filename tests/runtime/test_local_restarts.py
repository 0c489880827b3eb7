"""Crashes, crash loops, failed starts, health failures and spec changes."""

from __future__ import annotations

import asyncio
import os
import signal
from pathlib import Path

import psutil
import pytest

from llmos.runtime.base import HealthCheck, Phase
from llmos.runtime.local import LocalRuntime

from .helpers import (
    PY,
    Recorder,
    app_spec,
    delays_in,
    run,
    script_spec,
    status_where,
    until,
    wait_gone,
    write_app,
)

pytestmark = pytest.mark.usefixtures("event_loop_kind")

KEY = "modelservices/default/demo/0"


def test_kill_9_restarts_through_backoff(tmp_path: Path) -> None:
    spec = app_spec(write_app(tmp_path))
    recorder = Recorder()

    async def body(runtime: LocalRuntime) -> None:
        runtime.on_status(recorder)
        await runtime.ensure(spec)
        first = await until(status_where(runtime, KEY, lambda s: s.ready), "Ready")
        assert first.pid is not None and first.restarts == 0
        os.kill(first.pid, signal.SIGKILL)
        again = await until(
            status_where(runtime, KEY, lambda s: s.ready and s.pid != first.pid), "Ready again"
        )
        assert again.restarts == 1
        backoff = [s.status for s in recorder.seen if s.status.phase is Phase.BACKOFF]
        assert len(backoff) == 1
        assert backoff[0].last_exit_code == -9
        assert "killed by signal SIGKILL (9)" in backoff[0].message
        assert backoff[0].last_lines[-1].startswith("listening on ")

    run(tmp_path, body)
    assert recorder.phases(KEY)[:5] == [
        Phase.STARTING,
        Phase.READY,
        Phase.BACKOFF,
        Phase.STARTING,
        Phase.READY,
    ]


def test_repeated_exits_become_a_crash_loop_with_growing_delays(tmp_path: Path) -> None:
    spec = script_spec("jobs/default/crash/0", "print('boom, about to fail'); raise SystemExit(3)")
    recorder = Recorder()

    async def body(runtime: LocalRuntime) -> None:
        runtime.on_status(recorder)
        await runtime.ensure(spec)
        looping = await until(
            status_where(
                runtime, spec.key, lambda s: s.phase is Phase.CRASHLOOP and s.restarts >= 4
            ),
            "CrashLoop after 5 starts",
        )
        assert looping.last_exit_code == 3
        assert "exited with code 3" in looping.message
        assert "boom, about to fail" in looping.last_lines
        assert not looping.ready and looping.pid is None

    run(tmp_path, body)
    failures = [s for s in recorder.seen if s.status.phase in (Phase.BACKOFF, Phase.CRASHLOOP)]
    assert [s.status.phase for s in failures[:3]] == [Phase.BACKOFF, Phase.BACKOFF, Phase.CRASHLOOP]
    delays = delays_in([s.status.message for s in failures])
    assert delays[:5] == [0.05, 0.1, 0.2, 0.4, 0.4]  # doubling, capped at backoff_max
    # Each restart really waited its delay: failure status -> next start.
    starts = [s for s in recorder.seen if s.status.phase is Phase.READY]
    for failure, start, delay in zip(failures, starts[1:], delays, strict=False):
        assert start.at - failure.at >= delay * 0.9


def test_missing_executable_and_bad_cwd_become_status(tmp_path: Path) -> None:
    missing = script_spec(
        "jobs/default/missing/0", "", command=("llmos-no-such-program-xyz", "--x")
    )
    bad_cwd = script_spec("jobs/default/cwd/0", "pass", cwd=tmp_path / "no-such-dir")

    async def body(runtime: LocalRuntime) -> None:
        status = await runtime.ensure(missing)
        assert status.phase is Phase.BACKOFF
        assert (
            "cannot start 'llmos-no-such-program-xyz': executable not found on PATH"
            in status.message
        )
        status = await runtime.ensure(bad_cwd)
        assert status.phase is Phase.BACKOFF
        assert (
            f"working directory {str(tmp_path / 'no-such-dir')!r} does not exist" in status.message
        )
        looping = await until(
            status_where(runtime, missing.key, lambda s: s.phase is Phase.CRASHLOOP), "CrashLoop"
        )
        assert "executable not found" in looping.message and looping.restarts >= 2

    run(tmp_path, body)


def test_never_healthy_is_restarted_after_startup_timeout(tmp_path: Path) -> None:
    spec = script_spec(
        "jobs/default/silent/0",
        "import time; print('up but not serving', flush=True); time.sleep(600)",
        wants_port=True,
        health=HealthCheck(period_seconds=0.05, startup_timeout_seconds=0.4),
        grace_seconds=1.0,
    )

    async def body(runtime: LocalRuntime) -> None:
        first = await runtime.ensure(spec)
        assert first.phase is Phase.STARTING and first.pid is not None
        process = psutil.Process(first.pid)
        restarted = await until(
            status_where(runtime, spec.key, lambda s: s.restarts >= 1), "a restart"
        )
        assert restarted.pid != first.pid
        await wait_gone(process)
        await until(
            status_where(
                runtime, spec.key, lambda s: "did not become healthy within 0.4s" in s.message
            ),
            "the startup-timeout message",
        )

    run(tmp_path, body)


def test_unhealthy_after_ready_then_restarted(tmp_path: Path) -> None:
    spec = app_spec(write_app(tmp_path))
    recorder = Recorder()

    async def body(runtime: LocalRuntime) -> None:
        import httpx

        runtime.on_status(recorder)
        await runtime.ensure(spec)
        ready = await until(status_where(runtime, KEY, lambda s: s.ready), "Ready")
        async with httpx.AsyncClient(trust_env=False) as client:
            await client.get(f"http://127.0.0.1:{ready.port}/sick")
        sick = await until(
            status_where(runtime, KEY, lambda s: s.phase is Phase.UNHEALTHY), "Unhealthy"
        )
        assert not sick.ready and sick.pid == ready.pid
        assert "failed 2 times in a row" in sick.message
        again = await until(
            status_where(runtime, KEY, lambda s: s.ready and s.pid != ready.pid), "Ready again"
        )
        assert again.restarts == 1

    run(tmp_path, body)
    messages = [s.status.message for s in recorder.seen if s.status.phase is Phase.BACKOFF]
    assert any("was unhealthy for" in m for m in messages), messages


def _clashes_once(marker: Path) -> str:
    """A program whose first start says its port is taken (and notes the port in ``marker``)."""
    return (
        "import os, pathlib, sys, time\n"
        f"m = pathlib.Path({str(marker)!r})\n"
        "if not m.exists():\n"
        "    m.write_text(os.environ['PORT'])\n"
        "    print('OSError: [Errno 98] Address already in use', flush=True)\n"
        "    sys.exit(1)\n"
        "print('serving', flush=True)\n"
        "time.sleep(600)\n"
    )


def _clash_then_serve(tmp_path: Path, key: str, **changes: object) -> tuple[int, int, Recorder]:
    """Run a replica whose first start finds its port taken, until its second start serves.

    Returns the port of each start and what the runtime said meanwhile.
    """
    marker = tmp_path / "first-try-done"
    spec = script_spec(key, _clashes_once(marker), **changes)
    recorder = Recorder()
    ports: list[int] = []

    async def body(runtime: LocalRuntime) -> None:
        runtime.on_status(recorder)
        await runtime.ensure(spec)
        second = await until(
            status_where(runtime, spec.key, lambda s: s.ready and s.restarts == 1), "second start"
        )
        assert second.port is not None
        ports.append(second.port)

    run(tmp_path, body)
    return int(marker.read_text()), ports[0], recorder


def test_port_clash_retries_at_once_on_another_port(tmp_path: Path) -> None:
    key = "jobs/default/clash/0"
    first, second, recorder = _clash_then_serve(tmp_path, key, wants_port=True)
    assert second != first
    clash = [s.status for s in recorder.seen if s.status.phase is Phase.BACKOFF]
    assert len(clash) == 1 and "its port was taken" in clash[0].message
    assert Phase.CRASHLOOP not in recorder.phases(key)


def test_a_clash_on_a_port_the_caller_reserved_backs_off_on_that_port(tmp_path: Path) -> None:
    first, second, recorder = _clash_then_serve(tmp_path, "jobs/default/reserved/0", port=23456)
    assert first == second == 23456  # it cannot move
    backoff = [s.status for s in recorder.seen if s.status.phase is Phase.BACKOFF]
    assert len(backoff) == 1 and "another port" not in backoff[0].message


def test_spec_change_restarts_and_same_spec_is_a_no_op(tmp_path: Path) -> None:
    version_a = script_spec(
        "jobs/default/v/0", "import time; print('version A', flush=True); time.sleep(600)"
    )
    version_b = script_spec(
        "jobs/default/v/0", "import time; print('version B', flush=True); time.sleep(600)"
    )
    recorder = Recorder()

    async def body(runtime: LocalRuntime) -> None:
        async def until_line(wanted: str) -> list[str]:
            seen = []
            async for line in runtime.logs(version_a.key, follow=True):
                seen.append(line)
                if line == wanted:
                    break
            return seen

        runtime.on_status(recorder)
        a = await runtime.ensure(version_a)
        assert a.phase is Phase.READY and a.pid is not None
        process_a = psutil.Process(a.pid)
        await asyncio.wait_for(until_line("version A"), 10)
        seen = len(recorder.seen)
        assert await runtime.ensure(version_a) == a
        assert len(recorder.seen) == seen, "the same spec must change nothing"
        b = await runtime.ensure(version_b)
        assert b.pid != a.pid and b.phase is Phase.READY
        await wait_gone(process_a)
        assert psutil.Process(b.pid).cmdline() == [PY, "-c", version_b.command[2]]
        lines = await asyncio.wait_for(until_line("version B"), 10)
        assert lines == ["version A", "version B"]

    run(tmp_path, body)
    assert Phase.STOPPED not in recorder.phases(version_a.key)[:-1]
