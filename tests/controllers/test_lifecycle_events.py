"""A real server on recorded GPUs (2x A100 40GB + L4): lifecycle Events, and GPU scheduling
of Notebooks and MLClusters through the same placer as ModelServices.

The bundled SmolLM2 runs on the CPU (llama.cpp). Its OOM kill is a real one: the test
moves the engine into a memory cgroup with a tiny limit and sends it a chat request,
and the kernel's OOM killer ends it (skipped where no memory cgroup is writable).
A notebook's process and a Ray head's are killed with SIGKILL by the test itself: each
records BackOff, then Started and Ready again. A model's engine stopped with SIGSTOP
(hung) records Unhealthy, is routed around, and is restarted.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import psutil
import pytest

from factories import create_ms, ms_path
from server import RunningServer, start_server

sys.path.insert(0, str(Path(__file__).parent.parent))
from cli.runner import CLI
from gpu.helpers import MIXED
from memcg import limited_cgroup
from processes import descendants
from sandboxed import is_the_program
from workloads.helpers import condition, create, notebook, path, phase_is, wait_for

pytestmark = pytest.mark.slow

NODE = "/apis/node.llmos.ai/v1"


@pytest.fixture(scope="module")
def gpu_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    running = start_server(tmp_path_factory.mktemp("life") / "data", "--gpu-fixture", str(MIXED))
    running.setup_admin()
    yield running
    assert running.stop() == 0, running.log()


@pytest.fixture
def admin(gpu_server: RunningServer) -> Iterator[httpx.Client]:
    with gpu_server.client(gpu_server.admin_token) as client:  # type: ignore[attr-defined]
        yield client


def events_of(admin: httpx.Client, name: str) -> list[dict[str, Any]]:
    items = admin.get(f"{NODE}/namespaces/default/events").json()["items"]
    mine = [e for e in items if e["spec"]["involvedObject"]["name"] == name]
    mine.sort(key=lambda e: int(e["metadata"]["resourceVersion"]))  # creation order
    return [e["spec"] for e in mine]


def wait_event(admin: httpx.Client, name: str, reason: str, timeout: float = 90) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = [e for e in events_of(admin, name) if e["reason"] == reason]
        if found:
            return found[0]
        time.sleep(0.2)
    raise AssertionError(f"no {reason} Event for {name}: {events_of(admin, name)}")


def wait_events(
    admin: httpx.Client,
    name: str,
    check: Callable[[list[dict[str, Any]]], bool],
    what: str,
    timeout: float = 120,
) -> list[dict[str, Any]]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = events_of(admin, name)
        if check(found):
            return found
        time.sleep(0.2)
    raise AssertionError(f"{what} for {name} did not happen: {events_of(admin, name)}")


def started_pids(events: list[dict[str, Any]], label: str) -> list[int]:
    """The pids of the Started Events of the replica called ``label``, oldest first."""
    pattern = re.compile(rf"{re.escape(label)} started \(pid (\d+)\)")
    found = [pattern.fullmatch(e["message"]) for e in events if e["reason"] == "Started"]
    return [int(match.group(1)) for match in found if match]


def ready_twice(message: str) -> Callable[[list[dict[str, Any]]], bool]:
    """Whether the Ready Event with ``message`` was recorded a second time (its count)."""

    def check(events: list[dict[str, Any]]) -> bool:
        return any(
            e["reason"] == "Ready" and e["message"] == message and e["count"] >= 2 for e in events
        )

    return check


def kill_9(server: RunningServer, pid: int, *words: str) -> None:
    """SIGKILL the server's child ``pid`` (checked by its command line first), as the OOM
    killer or a user would: LLMOS does not send it."""
    process = psutil.Process(pid)
    assert process in psutil.Process(server.pid).children(recursive=True)
    line = " ".join(process.cmdline())
    assert all(word in line for word in words), line
    os.kill(pid, signal.SIGKILL)


def assert_restarted(events: list[dict[str, Any]], label: str, killed: int) -> None:
    backoff = [e for e in events if e["reason"] == "BackOff"]
    assert len(backoff) == 1, events
    assert backoff[0]["type"] == "Warning"
    assert backoff[0]["message"].startswith(f"{label} exited: "), backoff
    assert "killed by signal SIGKILL (9)" in backoff[0]["message"], backoff
    pids = started_pids(events, label)
    assert pids[0] == killed and pids[1] != killed, pids


def allocations(admin: httpx.Client) -> list[list[tuple[str, str, int]]]:
    items = sorted(
        admin.get(f"{NODE}/gpudevices").json()["items"], key=lambda d: d["status"]["index"]
    )
    return [
        [(a["kind"], a["name"], a["replica"]) for a in d["status"]["allocations"]] for d in items
    ]


def process_of(server: RunningServer, *words: str, timeout: float = 60) -> psutil.Process:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for child, argv in descendants(server.pid):
            # The program itself, not the sandbox (bwrap) around it, which names it too.
            if is_the_program(argv) and all(w in " ".join(argv) for w in words):
                return child
        time.sleep(0.2)
    raise AssertionError(f"no process runs {words}")


def test_bundled_model_lifecycle_events_then_a_real_oom_kill(
    gpu_server: RunningServer, admin: httpx.Client, tmp_path: Path
) -> None:
    create_ms(admin, "default", "life", replicas=1, engine="llama-cpp")
    wait_for(admin, ms_path("default", "life"), phase_is("Ready"), "Ready")
    reasons = [e["reason"] for e in events_of(admin, "life")]
    assert reasons[:3] == ["Scheduled", "Started", "Ready"], reasons
    scheduled = events_of(admin, "life")[0]
    assert scheduled["message"] == "replica 0 scheduled on the CPU (no GPU requested)"

    cli = CLI(tmp_path / "cli")
    assert cli.login(gpu_server).code == 0
    described = cli("describe", "ms", "life", "-n", "default")
    assert described.code == 0, described
    for reason in ("Scheduled", "Started", "Ready"):
        assert reason in described.stdout, described.stdout

    engine = process_of(gpu_server, "llmos.engines.llama_server", "life")
    with limited_cgroup(4 * 2**20) as procs:
        if procs is None:
            pytest.skip("no writable memory cgroup here: the OOM killer cannot be provoked")
        procs.write_text(str(engine.pid))  # its later allocations count against 4 MiB
        body = {"model": "life", "messages": [{"role": "user", "content": "Hi"}], "max_tokens": 8}
        with httpx.Client(base_url=gpu_server.url, verify=gpu_server.ssl_context()) as chat:
            headers = {"Authorization": f"Bearer {gpu_server.admin_token}"}  # type: ignore[attr-defined]
            with contextlib.suppress(httpx.HTTPError):  # the engine dies under the request
                chat.post("/v1/chat/completions", json=body, headers=headers, timeout=30)
        killed = wait_event(admin, "life", "OOMKilled")
        psutil.wait_procs([engine], timeout=30)
    assert killed["type"] == "Warning"
    assert "replica 0 ran out of memory" in killed["message"]
    assert "killed by signal SIGKILL (9)" in killed["message"]
    assert "by the kernel's OOM killer" in killed["message"]
    assert "last lines:" in killed["message"]
    backoff = wait_event(admin, "life", "BackOff")
    assert backoff["type"] == "Warning"
    described = cli("describe", "ms", "life", "-n", "default")
    assert "OOMKilled" in described.stdout, described.stdout
    assert admin.delete(ms_path("default", "life")).status_code == 200


def test_a_hung_engine_turns_unhealthy_is_routed_around_then_restarted(
    gpu_server: RunningServer, admin: httpx.Client
) -> None:
    """An engine that stops answering (SIGSTOP, as a wedged GPU driver leaves one) fails
    its health check: Unhealthy, no longer routed to, then restarted and Ready again."""
    create_ms(admin, "default", "hung", replicas=1, engine="llama-cpp")
    ms = ms_path("default", "hung")
    wait_for(admin, ms, phase_is("Ready"), "Ready")
    engine = process_of(gpu_server, "llmos.engines.llama_server", "hung")
    os.kill(engine.pid, signal.SIGSTOP)
    try:
        unhealthy = wait_event(admin, "hung", "Unhealthy", timeout=60)
        assert unhealthy["type"] == "Warning"
        assert unhealthy["message"] == "replica 0 fails its health check"
        wait_for(admin, ms, lambda o: not o["status"].get("endpoints"), "no endpoint left")
        chat = {"model": "hung", "messages": [{"role": "user", "content": "Hi"}], "max_tokens": 2}
        refused = admin.post("/v1/chat/completions", json=chat, timeout=10)
        assert refused.status_code == 503, refused.text  # not a request left hanging
        # Still failing, it is stopped (SIGKILL: a stopped process cannot act on SIGTERM)
        # and started again.
        wait_events(
            admin,
            "hung",
            lambda found: len(started_pids(found, "replica 0")) == 2,
            "a second start",
        )
    finally:
        with contextlib.suppress(psutil.NoSuchProcess):
            engine.send_signal(signal.SIGCONT)
    assert not engine.is_running(), "the hung engine was left behind"
    first, second = started_pids(events_of(admin, "hung"), "replica 0")
    assert first != second
    wait_for(admin, ms, phase_is("Ready"), "Ready again", timeout=120)
    reply = admin.post("/v1/chat/completions", json=chat, timeout=60)
    assert reply.status_code == 200, reply.text
    assert admin.delete(ms).status_code == 200


def test_a_notebook_killed_by_someone_else_backs_off_and_starts_again(
    gpu_server: RunningServer, admin: httpx.Client
) -> None:
    create(admin, "notebooks", "default", notebook("life-lab"))
    url = path("notebooks", "default", "life-lab")
    wait_for(admin, url, phase_is("Ready"), "Ready", 120)
    events = events_of(admin, "life-lab")
    assert [e["reason"] for e in events] == ["Scheduled", "Started", "Ready"], events
    assert events[0]["message"] == "the notebook scheduled on the CPU (no GPU requested)"
    ready = "the notebook is ready at /notebooks/default/life-lab/"
    assert events[2]["message"] == ready
    [pid] = started_pids(events, "the notebook")

    kill_9(gpu_server, pid, "jupyterlab", "/notebooks/default/life-lab/")
    events = wait_events(admin, "life-lab", ready_twice(ready), "Ready again", 120)
    assert_restarted(events, "the notebook", pid)
    wait_for(admin, url, phase_is("Ready"), "Ready again")
    assert admin.delete(url).status_code == 200


def test_a_notebook_gets_a_gpu_share_and_frees_it(
    gpu_server: RunningServer, admin: httpx.Client
) -> None:
    create(admin, "notebooks", "default", notebook("gpu-lab", resources={"gpuMemory": "1Gi"}))
    process = process_of(gpu_server, "jupyterlab", "/notebooks/default/gpu-lab/")
    env = process.environ()
    assert (env["CUDA_VISIBLE_DEVICES"], env["CUDA_DEVICE_ORDER"]) == ("2", "PCI_BUS_ID")
    assert allocations(admin) == [[], [], [("Notebook", "gpu-lab", 0)]]
    nb = admin.get(path("notebooks", "default", "gpu-lab")).json()
    assert condition(nb, "Scheduled")["message"] == "the notebook on GPU 2 (1 GiB of 22.5 GiB)"
    scheduled = wait_event(admin, "gpu-lab", "Scheduled")
    assert scheduled["message"] == "the notebook scheduled on GPU 2 (1 GiB of 22.5 GiB)"
    assert admin.delete(path("notebooks", "default", "gpu-lab")).status_code == 200
    deadline = time.monotonic() + 30
    while allocations(admin) != [[], [], []] and time.monotonic() < deadline:
        time.sleep(0.2)
    assert allocations(admin) == [[], [], []]


@pytest.mark.parametrize(
    ("plural", "obj"),
    [
        ("notebooks", notebook("too-many", resources={"gpu": 4})),
        (
            "mlclusters",
            {
                "apiVersion": "ml.llmos.ai/v1",
                "kind": "MLCluster",
                "metadata": {"name": "too-many-ray"},
                "spec": {"head": {"resources": {"gpu": 4}}},
            },
        ),
    ],
)
def test_a_workload_that_does_not_fit_is_pending_with_the_shortfall(
    gpu_server: RunningServer, admin: httpx.Client, plural: str, obj: dict[str, Any]
) -> None:
    name = obj["metadata"]["name"]
    create(admin, plural, "default", obj)
    found = wait_for(admin, path(plural, "default", name), phase_is("Pending"), "Pending")
    message = "needs 4 whole GPUs; this node has only 3 GPUs"
    assert found["status"]["message"] == message
    assert condition(found, "Scheduled")["reason"] == "ExceedsNode"
    event = wait_event(admin, name, "FailedScheduling")
    assert (event["type"], event["message"]) == ("Warning", message)
    assert allocations(admin) == [[], [], []]
    assert admin.delete(path(plural, "default", name)).status_code == 200


def test_a_ray_head_gets_its_gpu_share_and_restarts_after_a_kill_9(
    gpu_server: RunningServer, admin: httpx.Client
) -> None:
    cluster = {
        "apiVersion": "ml.llmos.ai/v1",
        "kind": "MLCluster",
        "metadata": {"name": "gpu-ray"},
        "spec": {"head": {"resources": {"gpuMemory": "0.5"}}},
    }
    create(admin, "mlclusters", "default", cluster)
    head = process_of(gpu_server, "ray.scripts.scripts", "--head")
    env = head.environ()
    # Binpack: half of the L4 (11.2 GiB) leaves the least free.
    assert env["CUDA_VISIBLE_DEVICES"] == "2"
    cmdline = head.cmdline()
    assert cmdline[cmdline.index("--num-gpus") + 1] == "1"
    assert allocations(admin) == [[], [], [("MLCluster", "gpu-ray", 0)]]
    event = wait_event(admin, "gpu-ray", "Scheduled")
    assert event["message"].startswith("the head scheduled on GPU 2")

    # Its lifecycle, then a SIGKILL of the head's process (its fate-sharing wrapper, which
    # the runtime supervises): the head backs off, starts again and is ready again.
    url = path("mlclusters", "default", "gpu-ray")
    wait_for(admin, url, phase_is("Ready"), "Ready", 180)
    events = events_of(admin, "gpu-ray")
    assert [e["reason"] for e in events][:3] == ["Scheduled", "Started", "Ready"], events
    ready = events[2]["message"]
    assert re.fullmatch(r"the head is ready at 127\.0\.0\.\d+", ready), ready
    [pid] = started_pids(events, "the head")
    kill_9(gpu_server, pid, "fateshare", "--head")
    events = wait_events(admin, "gpu-ray", ready_twice(ready), "the head ready again", 180)
    assert_restarted(events, "the head", pid)
    assert allocations(admin) == [[], [], [("MLCluster", "gpu-ray", 0)]]  # the same share

    assert admin.delete(url).status_code == 200
    deadline = time.monotonic() + 60
    while allocations(admin) != [[], [], []] and time.monotonic() < deadline:
        time.sleep(0.2)
    assert allocations(admin) == [[], [], []]
