"""How a replica's exit is recorded: a SIGKILL from outside, a crash (a real kernel OOM kill past
its memory limit: test_local_limits.py)."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest

from llmos.runtime.local import LocalRuntime
from llmos.runtime.local.oom import OOMWatch

from .helpers import run, script_spec, status_where, until

pytestmark = pytest.mark.usefixtures("event_loop_kind")

KEY = "modelservices/default/hog/0"


def test_a_sigkill_from_someone_else_without_an_oom_is_an_error(tmp_path: Path) -> None:
    if OOMWatch(os.getpid()).killed() is None:
        pytest.skip("no OOM-kill counter is readable here, so any SIGKILL counts as OOM")
    spec = script_spec(KEY, "import time\ntime.sleep(600)")

    async def body(runtime: LocalRuntime) -> None:
        first = await runtime.ensure(spec)
        assert first.pid is not None
        os.kill(first.pid, signal.SIGKILL)
        ended = await until(
            status_where(runtime, KEY, lambda s: s.last_termination is not None), "an exit"
        )
        termination = ended.last_termination
        assert termination is not None
        assert (termination.reason, termination.count, termination.exit_code) == ("Error", 1, -9)
        assert "killed by signal SIGKILL (9)" in termination.message
        # Kept after the restart, like Kubernetes' lastState.
        again = await until(
            status_where(runtime, KEY, lambda s: s.pid not in (None, first.pid)), "a restart"
        )
        assert again.last_termination == termination

    run(tmp_path, body)


def test_oom_watch_reads_counters_around_a_life() -> None:
    values = {Path("/a"): 5, Path("/proc/vmstat"): 70}
    watch = OOMWatch(os.getpid(), read=lambda path: values.get(path))
    assert watch.killed() is False
    values[Path("/proc/vmstat")] = 71
    assert watch.killed() is True
    blind = OOMWatch(os.getpid(), read=lambda path: None)
    assert blind.killed() is None
