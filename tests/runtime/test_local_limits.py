"""Memory and CPU limits of local replicas: real cgroups, a real OOM kill past the limit."""

from __future__ import annotations

import asyncio
import errno
import os
import signal
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psutil
import pytest

from llmos.runtime.base import Limits, Phase, ReplicaSpec, ReplicaStatus, Termination
from llmos.runtime.local import LocalRuntime, cgroups
from llmos.runtime.local.cgroups import CgroupTree, cgroup_dirs

from .helpers import gone, printed, run, script_spec, status_where, until

pytestmark = pytest.mark.usefixtures("event_loop_kind")

KEY = "notebooks/team/limited/0"
MiB = 2**20

# Starts a child in a session of its own (as Ray's daemons do), then waits.
PARENT = f"""
import subprocess, sys, time
child = subprocess.Popen([{sys.executable!r}, "-c", "import time; time.sleep(600)"],
                         start_new_session=True, stdout=subprocess.DEVNULL,
                         stderr=subprocess.DEVNULL)
print("child", child.pid, flush=True)
time.sleep(600)
"""

HOG = r"""
chunks = []
print("allocating", flush=True)
for _ in range(64):
    chunks.append(bytearray(16 * 2**20))  # touched: bytearray zero-fills
print("still alive: the limit did not hold", flush=True)
raise SystemExit(3)
"""


@pytest.fixture(autouse=True)
def cgroups_here() -> None:
    probe = CgroupTree.find("llmos-test-probe")
    probe.close()
    if probe.problem is not None:
        pytest.skip(f"no cgroups to limit replicas with here: {probe.problem}")


def folders(pid: int) -> dict[str, Path]:
    """The memory and cpu cgroup folders of ``pid`` (one on cgroup v2)."""
    found = {}
    for controllers, folder in cgroup_dirs(pid):
        for controller in ("memory", "cpu"):
            if controller in controllers or not controllers:
                found.setdefault(controller, folder)
    return found


def test_a_replica_and_all_it_starts_run_in_its_cgroup_and_go_with_it(tmp_path: Path) -> None:
    spec = script_spec(KEY, PARENT, limits=Limits(memory=256 * MiB, cpus=0.5))

    async def body(runtime: LocalRuntime) -> tuple[int, int, dict[str, Path]]:
        started = await runtime.ensure(spec)
        assert started.pid is not None and runtime.limits_problem is None
        line = await asyncio.wait_for(printed(runtime, KEY, lambda x: x.startswith("child ")), 20)
        child = int(line.split()[1])
        found = folders(started.pid)
        assert folders(child) == found  # another session, the same cgroup
        await runtime.remove(KEY)
        # It left the replica's process group, not its cgroup: it went with the replica.
        assert gone(psutil.Process(child)) if psutil.pid_exists(child) else True
        assert not any(folder.exists() for folder in found.values())
        return started.pid, child, found

    pid, _child, found = run(tmp_path, body)
    assert found and all(f.name == "notebooks_team_limited_0" for f in found.values()), found
    assert not psutil.pid_exists(pid)


def test_a_start_kills_what_a_dead_servers_replicas_left(tmp_path: Path) -> None:
    async def first(runtime: LocalRuntime) -> Path:
        await runtime.ensure(script_spec(KEY, "import time; time.sleep(600)"))
        status = runtime.status(KEY)
        assert status is not None and status.pid is not None
        return folders(status.pid)["memory"]

    group = run(tmp_path, first)
    # As if the server had died and a process in its own session had outlived its replica.
    escaped = subprocess.Popen(
        [sys.executable, "-c", "import time; time.sleep(600)"], start_new_session=True
    )
    try:
        group.mkdir(parents=True, exist_ok=True)
        (group / "cgroup.procs").write_text(str(escaped.pid))

        async def again(runtime: LocalRuntime) -> None:
            assert escaped.wait(10) == -signal.SIGKILL

        run(tmp_path, again)
        assert not group.exists()
    finally:
        escaped.kill()
        escaped.wait()


def test_the_limits_are_the_kernels(tmp_path: Path) -> None:
    spec = script_spec(KEY, "import time; time.sleep(600)", limits=Limits(256 * MiB, 0.5))

    async def body(runtime: LocalRuntime) -> dict[str, str]:
        started = await runtime.ensure(spec)
        assert started.pid is not None
        found = folders(started.pid)
        memory, cpu = found["memory"], found["cpu"]
        read = {
            name: (folder / name).read_text().strip()
            for folder, name in [
                (memory, "memory.max"),
                (memory, "memory.swap.max"),
                (memory, "memory.limit_in_bytes"),
                (memory, "memory.memsw.limit_in_bytes"),
                (cpu, "cpu.weight"),
                (cpu, "cpu.max"),
                (cpu, "cpu.shares"),
                (cpu, "cpu.cfs_quota_us"),
            ]
            if (folder / name).exists()
        }
        # All replicas together weigh as much as the machine's cores.
        whole = (cpu.parent / ("cpu.weight" if "memory.max" in read else "cpu.shares")).read_text()
        read["all replicas"] = whole.strip()
        await runtime.remove(KEY)
        return read

    read = run(tmp_path, body)
    cores = os.cpu_count() or 1
    if "memory.max" in read:  # cgroup v2: Kubernetes' conversion of shares to a weight
        weight = 1 + ((cores * 1024 - 2) * 9999) // 262142
        assert read.pop("memory.swap.max", "0") == "0"  # no swap past the limit
        assert read == {
            "memory.max": str(256 * MiB),
            "cpu.weight": "20",
            "cpu.max": "max 100000",
            "all replicas": str(weight),
        }
    else:  # half a core: half the weight of one; no quota, an idle core is anyone's
        # No swap past the limit, where the kernel accounts swap.
        assert read.pop("memory.memsw.limit_in_bytes", str(256 * MiB)) == str(256 * MiB)
        assert read == {
            "memory.limit_in_bytes": str(256 * MiB),
            "cpu.shares": "512",
            "cpu.cfs_quota_us": "-1",
            "all replicas": str(cores * 1024),
        }


def first_exit(tmp_path: Path, spec: ReplicaSpec) -> tuple[ReplicaStatus, Termination]:
    """Run ``spec`` until its process first ends: its status then, and how it ended."""

    async def body(runtime: LocalRuntime) -> tuple[ReplicaStatus, Termination]:
        await runtime.ensure(spec)
        ended = await until(
            status_where(runtime, KEY, lambda s: s.last_termination is not None), "an exit"
        )
        await runtime.remove(KEY)
        assert ended.last_termination is not None
        return ended, ended.last_termination

    return run(tmp_path, body)


def test_past_its_memory_limit_a_replica_is_oomkilled(tmp_path: Path) -> None:
    ended, termination = first_exit(tmp_path, script_spec(KEY, HOG, limits=Limits(96 * MiB)))
    assert termination.reason == "OOMKilled", termination
    assert (termination.exit_code, termination.last_lines[0]) == (-9, "allocating")
    assert "by the kernel's OOM killer" in termination.message
    assert ended.phase in (Phase.BACKOFF, Phase.CRASHLOOP)
    assert (ended.oom_exits, ended.oom_kills) == (1, 0)


# Its child runs out of memory and is killed; the parent itself exits 1, as vLLM's does when
# its engine core dies.
PARENT_OF_A_HOG = f"""
import subprocess, sys
child = subprocess.run([{sys.executable!r}, "-c", {HOG!r}])
print("the child ended with", child.returncode, flush=True)
sys.exit(1)
"""


def test_a_process_of_it_killed_for_memory_makes_it_oomkilled(tmp_path: Path) -> None:
    spec = script_spec(KEY, PARENT_OF_A_HOG, limits=Limits(memory=96 * MiB))
    _, termination = first_exit(tmp_path, spec)
    assert (termination.reason, termination.exit_code) == ("OOMKilled", 1), termination
    assert "the child ended with -9" in termination.last_lines
    assert "killed one of its processes (out of memory)" in termination.message


# Its child runs out of memory and is killed; the parent goes on, as a Ray node does when
# it loses a task's worker. On cgroup v2 the OOM killer ends the whole group instead.
PARENT_LIVES_ON = f"""
import subprocess, sys, time
child = subprocess.run([{sys.executable!r}, "-c", {HOG!r}])
print("the child ended with", child.returncode, flush=True)
time.sleep(600)
"""


def test_a_process_it_lives_through_losing_to_the_oom_killer_is_counted(
    tmp_path: Path,
) -> None:
    spec = script_spec(KEY, PARENT_LIVES_ON, limits=Limits(memory=96 * MiB))

    async def body(runtime: LocalRuntime) -> ReplicaStatus:
        await runtime.ensure(spec)
        await asyncio.wait_for(printed(runtime, KEY, lambda x: x.startswith("the child")), 30)
        status = await until(
            status_where(runtime, KEY, lambda s: bool(s.oom_kills or s.last_termination)), "a kill"
        )
        await runtime.remove(KEY)
        return status

    status = run(tmp_path, body)
    if status.last_termination is not None:  # cgroup v2: memory.oom.group ended it all
        assert status.last_termination.reason == "OOMKilled", status.last_termination
    else:
        assert (status.oom_kills, status.oom_exits, status.phase, status.restarts) == (
            1,
            0,
            Phase.READY,
            0,
        ), status


def test_a_limit_below_what_it_needs_to_start_is_an_oom_kill_too(tmp_path: Path) -> None:
    spec = script_spec(KEY, "import time; time.sleep(600)", limits=Limits(memory=2 * MiB))
    _, termination = first_exit(tmp_path, spec)
    assert termination.reason == "OOMKilled", termination


def test_without_limits_a_replica_has_a_cgroup_all_the_same(tmp_path: Path) -> None:
    spec = script_spec(KEY, "import time; time.sleep(600)")

    async def body(runtime: LocalRuntime) -> None:
        started = await runtime.ensure(spec)
        assert started.pid is not None
        found = folders(started.pid)
        assert found != folders(os.getpid())  # so that all it starts goes with it
        memory = found["memory"]
        limit = memory / ("memory.max" if (memory / "memory.max").exists() else "cpu.shares")
        if limit.name == "memory.max":
            assert limit.read_text().strip() == "max"
        else:  # v1: no memory limit (the kernel's largest), one core's share
            assert (found["cpu"] / "cpu.shares").read_text().strip() == "1024"
            unlimited = int((memory / "memory.limit_in_bytes").read_text())
            assert unlimited >= 2**62
        await runtime.remove(KEY)

    run(tmp_path, body)


# cgroup v2 with the memory and cpu controllers cannot exist on these machines (their
# controllers are bound to v1 hierarchies), so its path runs on a folder standing in for the
# server's cgroup, with the kernel's one refusal that matters: a cgroup with processes in it
# cannot hand controllers to children (EBUSY).
class FakeV2:
    """A folder standing in for the server's cgroup on cgroup v2."""

    def __init__(self, root: Path, procs: list[int], controllers: str) -> None:
        self.root = root
        root.mkdir()
        (root / "cgroup.controllers").write_text(controllers)
        (root / "cgroup.procs").write_text("\n".join(map(str, procs)))
        (root / "cgroup.subtree_control").write_text("")

    def refuses(self, path: Path, text: str) -> bool:
        """What the kernel refuses, and moves a process that writes "0" into a cgroup."""
        busy = (self.root / "cgroup.procs").read_text().strip()
        if path == self.root / "cgroup.subtree_control" and busy:
            return True
        if path.name == "cgroup.procs" and text == "0" and path.parent != self.root:
            (self.root / "cgroup.procs").write_text("")
        return False


@pytest.fixture
def fake_v2(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Callable[..., FakeV2]:
    real = Path.write_text

    def write_text(path: Path, text: str, *args: Any, **kwargs: Any) -> int:
        fake = made[0] if made else None
        if fake is not None and path.is_relative_to(fake.root) and fake.refuses(path, text):
            raise OSError(errno.EBUSY, "Device or resource busy")
        return real(path, text, *args, **kwargs)

    made: list[FakeV2] = []

    def make(procs: list[int], controllers: str = "cpuset cpu io memory pids") -> FakeV2:
        fake = FakeV2(tmp_path / "server.service", procs, controllers)
        made.append(fake)
        monkeypatch.setattr(cgroups, "cgroup_dirs", lambda pid="self": [(frozenset(), fake.root)])
        monkeypatch.setattr(Path, "write_text", write_text)
        return fake

    return make


def test_on_cgroup_v2_the_server_makes_room_for_its_replicas(
    fake_v2: Callable[..., FakeV2],
) -> None:
    fake = fake_v2([os.getpid()])  # the only process in its cgroup: a Delegate=yes service
    tree = CgroupTree.find("llmos-x")
    assert tree.problem is None and tree.v2
    assert (fake.root / "llmos-server" / "cgroup.procs").read_text() == "0"
    assert (fake.root / "cgroup.subtree_control").read_text() == "+memory +cpu"
    assert (fake.root / "llmos-x" / "cgroup.subtree_control").read_text() == "+memory +cpu"
    group = tree.make("modelservices/team/chat/0", Limits(memory=2 * 2**30, cpus=2))
    (folder,) = group.folders
    assert folder == fake.root / "llmos-x" / "modelservices_team_chat_0"
    assert (folder / "memory.max").read_text() == str(2 * 2**30)
    assert (folder / "cpu.weight").read_text() == str(1 + ((2048 - 2) * 9999) // 262142)
    assert group.procs == (folder / "cgroup.procs",)


def test_on_cgroup_v2_a_shared_or_undelegated_cgroup_says_why_not(
    fake_v2: Callable[..., FakeV2],
) -> None:
    fake_v2([1, os.getpid()])  # a container's shell and the server
    problem = CgroupTree.find("llmos-x").problem
    assert problem is not None and "holds other processes" in problem
    assert "Delegate=yes" in problem


def test_on_cgroup_v2_without_the_controllers_it_says_which(
    fake_v2: Callable[..., FakeV2],
) -> None:
    fake_v2([os.getpid()], controllers="pids")
    problem = CgroupTree.find("llmos-x").problem
    assert problem is not None and "no memory or cpu controller" in problem
