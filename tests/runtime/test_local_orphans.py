"""No orphans: a kill -9 of the server takes its replicas down, and a restart sweeps survivors."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import psutil
import pytest

from llmos.runtime.local import LocalRuntime
from llmos.runtime.local.process import read_stat
from llmos.runtime.local.state import ProcessRecord, StateDir

from .helpers import FAST, PY, drive, gone, wait_gone

pytestmark = pytest.mark.usefixtures("event_loop_kind")

HELPER = Path(__file__).with_name("orphan_helper.py")
SLEEPER = [PY, "-c", "import time; time.sleep(600)"]


def test_kill_9_of_the_server_takes_its_replica_down(tmp_path: Path, event_loop_kind: str) -> None:
    state, logs = tmp_path / "state", tmp_path / "logs"
    helper = subprocess.Popen(
        [sys.executable, str(HELPER), str(state), str(logs), event_loop_kind],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert helper.stdout is not None
        replica = json.loads(helper.stdout.readline())
        child = psutil.Process(replica["pid"])
        assert child.ppid() == helper.pid
        assert os.getpgid(child.pid) == child.pid, "a replica leads its own process group"
        assert list(state.glob("*.json")), "a state record is kept while it runs"
    finally:
        helper.kill()
        helper.wait(10)

    async def after() -> None:
        await wait_gone(child, timeout=10)  # PR_SET_PDEATHSIG
        # The next server finds the record, sees nothing to kill, and drops it.
        runtime = LocalRuntime(state, logs, timing=FAST)
        await runtime.start()
        assert not list(state.glob("*.json"))
        assert [line async for line in runtime.logs("notebooks/default/nb/0")] == ["replica up"]
        await runtime.stop()

    drive(asyncio.wait_for(after(), 60))


def record_for(
    proc: subprocess.Popen[bytes], key: str, *, starttime_offset: int = 0
) -> ProcessRecord:
    stat = read_stat(proc.pid)
    assert stat is not None
    return ProcessRecord(key, proc.pid, proc.pid, stat.starttime + starttime_offset, "x", 0.5)


def test_start_kills_survivors_but_never_a_recycled_pid(tmp_path: Path) -> None:
    survivor = subprocess.Popen(SLEEPER, start_new_session=True)
    # Its leader died but a member of its group lives on: it must go too.
    orphaned_group = subprocess.Popen(
        [
            PY,
            "-c",
            f"import subprocess; p = subprocess.Popen({SLEEPER!r}); print(p.pid, flush=True)",
        ],
        start_new_session=True,
        stdout=subprocess.PIPE,
    )
    assert orphaned_group.stdout is not None
    straggler = psutil.Process(int(orphaned_group.stdout.readline()))
    stranger = subprocess.Popen(SLEEPER, start_new_session=True)
    try:
        leader_record = record_for(orphaned_group, "jobs/default/gone-leader/0")
        orphaned_group.wait(10)
        state = StateDir(tmp_path / "state")
        state.path.mkdir()
        state.save(record_for(survivor, "modelservices/default/old/0"))
        state.save(leader_record)
        # Same pid, other start time: a recycled pid that must not be touched.
        state.save(record_for(stranger, "modelservices/default/recycled/0", starttime_offset=-1))
        (state.path / "garbage.json").write_text("{not json")

        async def main() -> None:
            runtime = LocalRuntime(state.path, tmp_path / "logs", timing=FAST)
            await runtime.start()
            await runtime.stop()

        drive(asyncio.wait_for(main(), 60))
        assert survivor.wait(10) == -signal.SIGTERM
        asyncio.run(wait_gone(straggler))
        assert stranger.poll() is None and not gone(psutil.Process(stranger.pid))
        assert not list(state.path.glob("*.json"))
    finally:
        for proc in (survivor, stranger):
            if proc.poll() is None:
                proc.kill()
            proc.wait(10)
        if not gone(straggler):
            straggler.kill()
