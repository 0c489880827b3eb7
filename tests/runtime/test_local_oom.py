"""How a replica's exit is recorded: a SIGKILL from outside, a crash (a real kernel OOM kill past
its memory limit: test_local_limits.py)."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest

from llmos.runtime.local import LocalRuntime
from llmos.runtime.local.oom import OOMWatch, judge_exit

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


def test_a_kill_lived_through_is_no_cause_of_a_later_exit_but_a_sigkill_still_is(
    tmp_path: Path,
) -> None:
    group = tmp_path / "group"
    group.mkdir()
    (group / "memory.oom_control").write_text("oom_kill_disable 0\nunder_oom 0\noom_kill 0\n")
    values = {group / "memory.oom_control": 0, Path("/proc/vmstat"): 70}
    watch = OOMWatch(group=group, read=lambda path: values.get(path))
    assert watch.ends_one_process  # cgroup v1: the OOM killer ends one process
    values[group / "memory.oom_control"] = 1
    values[Path("/proc/vmstat")] = 71
    kills, counters = watch.inside()
    assert kills == 1
    watch.lived_through(counters)
    assert watch.inside()[0] == 0 and not watch.killed_inside()
    # It exits 1 later: not of that kill. Killed by a SIGKILL: judged from its start.
    assert judge_exit(1, watch)[0] == "Error"
    assert judge_exit(-signal.SIGKILL, watch)[0] == "OOMKilled"
    (group / "memory.oom_control").unlink()
    (group / "memory.events").write_text("oom_kill 0\n")
    assert not OOMWatch(group=group).ends_one_process  # v2: memory.oom.group ends them all
