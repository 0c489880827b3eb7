"""remove() and stop(): SIGTERM to the process group, SIGKILL after the grace period."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import psutil
import pytest

from llmos.runtime.base import Phase
from llmos.runtime.local import LocalRuntime, LocalRuntimeError

from .helpers import FAST, Recorder, drive, run, script_spec, wait_gone

pytestmark = pytest.mark.usefixtures("event_loop_kind")

# Forks a grandchild into its own process group, prints both pids, then waits.
FAMILY = """
import signal, subprocess, sys, time
{setup}
child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
print("grandchild", child.pid, flush=True)
time.sleep(600)
"""
POLITE = FAMILY.format(
    setup="signal.signal(signal.SIGTERM, lambda *a: (print('got TERM', flush=True), sys.exit(0)))"
)
STUBBORN = FAMILY.format(setup="signal.signal(signal.SIGTERM, signal.SIG_IGN)")


async def start_family(
    runtime: LocalRuntime, key: str, code: str, grace: float
) -> list[psutil.Process]:
    status = await runtime.ensure(script_spec(key, code, grace_seconds=grace))
    assert status.pid is not None
    leader = psutil.Process(status.pid)

    async def grandchild_pid() -> int:
        async for line in runtime.logs(key, follow=True):
            if line.startswith("grandchild "):
                return int(line.split()[1])
        raise AssertionError("no grandchild line")

    grandchild = psutil.Process(await asyncio.wait_for(grandchild_pid(), 10))
    assert grandchild.ppid() == leader.pid
    return [leader, grandchild]


def test_remove_honours_sigterm(tmp_path: Path) -> None:
    recorder = Recorder()

    async def body(runtime: LocalRuntime) -> float:
        runtime.on_status(recorder)
        family = await start_family(runtime, "jobs/default/polite/0", POLITE, grace=20.0)
        started = time.monotonic()
        await runtime.remove("jobs/default/polite/0")
        took = time.monotonic() - started
        for process in family:
            await wait_gone(process, timeout=1)
        assert runtime.status("jobs/default/polite/0") is None
        assert runtime.keys() == []
        await runtime.remove("jobs/default/polite/0")  # unknown now: a no-op
        return took

    assert run(tmp_path, body) < 10, "a child that exits on SIGTERM must not wait out the grace"
    assert "got TERM" in (tmp_path / "logs" / "jobs_default_polite_0.log").read_text()
    assert recorder.phases("jobs/default/polite/0")[-1] is Phase.STOPPED
    assert not list((tmp_path / "state").glob("*.json"))


def test_a_child_ignoring_sigterm_is_killed_after_grace(tmp_path: Path) -> None:
    async def body(runtime: LocalRuntime) -> float:
        family = await start_family(runtime, "jobs/default/stubborn/0", STUBBORN, grace=0.5)
        started = time.monotonic()
        await runtime.remove("jobs/default/stubborn/0")
        took = time.monotonic() - started
        for process in family:
            await wait_gone(process, timeout=1)
        return took

    took = run(tmp_path, body)
    assert 0.5 <= took < 5


def test_stop_ends_every_replica_and_refuses_more(tmp_path: Path) -> None:
    async def main() -> None:
        runtime = LocalRuntime(tmp_path / "state", tmp_path / "logs", timing=FAST)
        with pytest.raises(LocalRuntimeError, match="start"):
            await runtime.ensure(script_spec("a/0", "pass"))
        await runtime.start()
        families = [
            await start_family(runtime, f"jobs/default/j{i}/0", STUBBORN, grace=0.3)
            for i in range(3)
        ]
        await runtime.stop()
        for process in (p for family in families for p in family):
            await wait_gone(process, timeout=1)
        with pytest.raises(LocalRuntimeError, match="stopped"):
            await runtime.ensure(script_spec("a/0", "pass"))
        await runtime.stop()  # idempotent

    drive(asyncio.wait_for(main(), 60))


def test_a_second_live_runtime_on_the_same_state_dir_is_refused(tmp_path: Path) -> None:
    async def body(runtime: LocalRuntime) -> None:
        other = LocalRuntime(tmp_path / "state", tmp_path / "logs2")
        with pytest.raises(LocalRuntimeError, match="in use by pid") as caught:
            await other.start()
        assert caught.value.reason == "Conflict"

    run(tmp_path, body)


def test_empty_command_is_refused(tmp_path: Path) -> None:
    async def body(runtime: LocalRuntime) -> None:
        with pytest.raises(LocalRuntimeError, match="command is empty"):
            await runtime.ensure(script_spec("a/0", "", command=()))

    run(tmp_path, body)
