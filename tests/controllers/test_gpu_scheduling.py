"""A real server on recorded GPUs (2x A100 40GB + L4): Node capacity, GPUDevices, scheduling.

The server reads its GPUs from ``--gpu-fixture``, so this runs without a GPU.
A ModelService that fits is served by a real llama.cpp process on the CPU
(the bundled SmolLM2), which only sees the GPU index it was given.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import psutil
import pytest
from prometheus_client.parser import text_string_to_metric_families

from factories import create_ms, ms_path
from server import RunningServer, admin_server

sys.path.insert(0, str(Path(__file__).parent.parent))
from gpu.helpers import MIXED
from processes import descendants
from sandboxed import is_the_program

pytestmark = pytest.mark.slow

NODE = "/apis/node.llmos.ai/v1"
GiB = 2**30


@pytest.fixture(scope="module")
def gpu_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    data = tmp_path_factory.mktemp("gpus") / "data"
    with admin_server(data, "--gpu-fixture", str(MIXED)) as running:
        yield running


@pytest.fixture
def admin(gpu_server: RunningServer) -> Iterator[httpx.Client]:
    with gpu_server.admin_client() as client:
        yield client


def wait_for(
    admin: httpx.Client, path: str, test: Callable[[dict[str, Any]], bool], timeout: float = 120
) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    last: dict[str, Any] = {}
    while time.monotonic() < deadline:
        response = admin.get(path)
        if response.status_code == 200:
            last = response.json()
            if test(last):
                return last
        time.sleep(0.2)
    raise AssertionError(f"{path} never got there: {last.get('status')}")


def devices(admin: httpx.Client) -> list[dict[str, Any]]:
    response = admin.get(f"{NODE}/gpudevices")
    assert response.status_code == 200, response.text
    return sorted(response.json()["items"], key=lambda d: d["status"]["index"])


def events_of(admin: httpx.Client, name: str) -> list[dict[str, Any]]:
    items = admin.get(f"{NODE}/namespaces/default/events").json()["items"]
    return [e["spec"] for e in items if e["spec"]["involvedObject"]["name"] == name]


def engine_of(server: RunningServer, served: str) -> psutil.Process:
    for child, cmdline in descendants(server.pid):
        if (
            is_the_program(cmdline)
            and "llmos.engines.llama_server" in " ".join(cmdline)
            and served in cmdline
        ):
            return child
    raise AssertionError(f"no llama.cpp process serves {served}")


def wait_engine(server: RunningServer, served: str, timeout: float = 60) -> psutil.Process:
    deadline = time.monotonic() + timeout
    while True:
        try:
            return engine_of(server, served)
        except AssertionError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


def condition(obj: dict[str, Any], kind: str) -> dict[str, Any]:
    return next(c for c in obj["status"]["conditions"] if c["type"] == kind)


def test_node_capacity_and_gpudevices(admin: httpx.Client) -> None:
    (node,) = admin.get(f"{NODE}/nodes").json()["items"]
    gpus = {"nvidia.com/gpu": "3", "llmos.ai/gpu-memory": "104954Mi"}  # 2 x 40960Mi + 23034Mi
    assert node["status"]["capacity"].items() >= gpus.items()
    assert node["status"]["allocatable"].items() >= gpus.items()
    found = devices(admin)
    name = node["metadata"]["name"]
    assert [d["metadata"]["name"] for d in found] == [f"{name}-gpu{i}" for i in range(3)]
    assert [d["status"]["product"] for d in found] == [
        "NVIDIA A100-SXM4-40GB",
        "NVIDIA A100-SXM4-40GB",
        "NVIDIA L4",
    ]
    for device in found:
        status = device["status"]
        assert device["spec"]["nodeName"] == name
        assert status["health"] == "Healthy"
        assert status["uuid"].startswith("GPU-")
        assert status["driverVersion"] == "550.54.15"
        assert status["usage"]["temperatureCelsius"] > 0
        assert status["allocations"] == []
    assert found[0]["status"]["computeCapability"] == "8.0"
    assert found[0]["status"]["migMode"] == "Disabled"
    # The kind is served like any other: by short name in discovery, and one at a time.
    one = admin.get(f"{NODE}/gpudevices/{name}-gpu2").json()
    assert one["status"]["memoryTotalBytes"] == 23034 * 2**20


@pytest.mark.parametrize(
    ("name", "resources", "message"),
    [
        (
            "too-big",
            {"gpuMemory": "48Gi"},
            "needs 1 GPU with 48 GiB free; the largest GPU on this node has 40 GiB of memory "
            "(GPU 0)",
        ),
        (
            "four-gpus",
            {"gpu": 4},
            "needs 4 whole GPUs; this node has only 3 GPUs",
        ),
    ],
)
def test_more_gpu_than_exists_stays_pending(
    gpu_server: RunningServer,
    admin: httpx.Client,
    name: str,
    resources: dict[str, Any],
    message: str,
) -> None:
    create_ms(admin, "default", name, replicas=1, engine="llama-cpp", resources=resources)
    ms = wait_for(
        admin, ms_path("default", name), lambda o: (o.get("status") or {}).get("phase") == "Pending"
    )
    assert ms["status"]["message"] == message
    assert ms["status"]["readyReplicas"] == 0
    assert ms["status"]["gpuMemoryEstimate"].endswith("Mi")
    # No waiting helps: the reason says so (the CLI stops waiting on it); the Event is as ever.
    for type_ in ("Scheduled", "Ready"):
        found = condition(ms, type_)
        assert (found["status"], found["reason"], found["message"]) == (
            "False",
            "ExceedsNode",
            message,
        )
    (event,) = [e for e in events_of(admin, name) if e["reason"] == "FailedScheduling"]
    assert (event["type"], event["message"]) == ("Warning", message)
    with pytest.raises(AssertionError):
        engine_of(gpu_server, name)  # nothing started
    assert all(d["status"]["allocations"] == [] for d in devices(admin))
    assert admin.delete(ms_path("default", name)).status_code == 200


def test_a_share_is_placed_recorded_kept_over_a_restart_and_released(
    gpu_server: RunningServer, admin: httpx.Client
) -> None:
    create_ms(
        admin, "default", "shared", replicas=1, engine="llama-cpp", resources={"gpuMemory": "1Gi"}
    )
    path = ms_path("default", "shared")
    ms = wait_for(admin, path, lambda o: (o.get("status") or {}).get("phase") == "Ready")
    # Binpack: the L4 is the GPU with the least left after a 1 GiB share.
    where = "replica 0 on GPU 2 (1 GiB of 22.5 GiB)"
    assert condition(ms, "Scheduled")["message"] == where
    assert [e["message"] for e in events_of(admin, "shared") if e["reason"] == "Scheduled"] == [
        "replica 0 scheduled on GPU 2 (1 GiB of 22.5 GiB)"
    ]
    # SmolLM2 Q4_1: 94 MiB of weights + 90 MiB of KV cache + 517 MiB of overhead.
    assert ms["status"]["gpuMemoryEstimate"] == "701Mi"
    engine = engine_of(gpu_server, "shared")
    env = engine.environ()
    assert (env["CUDA_VISIBLE_DEVICES"], env["CUDA_DEVICE_ORDER"]) == ("2", "PCI_BUS_ID")
    cmdline = engine.cmdline()
    assert cmdline[cmdline.index("--n_gpu_layers") + 1] == "-1"  # the estimate fits the share
    held = {
        "kind": "ModelService",
        "namespace": "default",
        "name": "shared",
        "replica": 0,
        "memoryBytes": GiB,
        "whole": False,
    }
    assert [d["status"]["allocations"] for d in devices(admin)] == [[], [], [held]]

    # A restart rebuilds nothing from memory: the allocation is in the store.
    admin.close()  # (an idle keep-alive connection would hold up the shutdown)
    gpu_server.stop()
    gpu_server.start()
    with gpu_server.admin_client() as again:
        # (Starting again, not Ready, until the new engine is: wait for it.)
        assert wait_engine(gpu_server, "shared").environ()["CUDA_VISIBLE_DEVICES"] == "2"
        wait_for(again, path, lambda o: (o.get("status") or {}).get("phase") == "Ready")
        assert [d["status"]["allocations"] for d in devices(again)] == [[], [], [held]]
        assert len([e for e in events_of(again, "shared") if e["reason"] == "Scheduled"]) == 1

        assert again.delete(path).status_code == 200
        deadline = time.monotonic() + 30
        while again.get(path).status_code != 404 and time.monotonic() < deadline:
            time.sleep(0.2)
        assert again.get(path).status_code == 404
        assert [d["status"]["allocations"] for d in devices(again)] == [[], [], []]


def test_cpu_and_memory_are_reserved_and_an_over_commit_waits_for_room(
    gpu_server: RunningServer, admin: httpx.Client
) -> None:
    cores = os.cpu_count() or 1
    (only,) = admin.get(f"{NODE}/nodes").json()["items"]
    node = f"{NODE}/nodes/{only['metadata']['name']}"
    phase = lambda wanted: lambda o: (o.get("status") or {}).get("phase") == wanted  # noqa: E731

    create_ms(
        admin,
        "default",
        "small",
        replicas=1,
        engine="llama-cpp",
        resources={"cpu": "500m", "memory": "1Gi"},
    )
    wait_for(admin, ms_path("default", "small"), phase("Ready"))
    status = admin.get(node).json()["status"]
    assert status["allocations"] == [
        {
            "kind": "ModelService",
            "namespace": "default",
            "name": "small",
            "replica": 0,
            "cpu": 0.5,
            "memoryBytes": GiB,
        }
    ]
    assert status["allocated"] == {"cpu": "500m", "memory": "1Gi"}
    reserved = {
        sample.name: sample.value
        for family in text_string_to_metric_families(admin.get("/metrics").text)
        for sample in family.samples
        if sample.name.endswith("_reserved_cores") or sample.name.endswith("_reserved_bytes")
    }
    assert reserved == {
        "llmos_node_cpu_reserved_cores": 0.5,
        "llmos_node_memory_reserved_bytes": GiB,
    }

    # The whole node's CPUs do not fit beside it: Pending, nothing started, and why.
    create_ms(
        admin, "default", "big", replicas=1, engine="llama-cpp", resources={"cpu": str(cores)}
    )
    big = wait_for(admin, ms_path("default", "big"), phase("Pending"))
    free = f"{cores - 0.5:g} of this node's {cores} CPU{'s' if cores > 1 else ''}"
    message = (
        f"needs {cores} CPU{'s' if cores > 1 else ''}; {free} "
        f"{'is' if cores - 0.5 <= 1 else 'are'} free (held by default/small: 0.5 CPU)"
    )
    assert big["status"]["message"] == message
    assert condition(big, "Scheduled")["reason"] == "FailedScheduling"
    (event,) = [e for e in events_of(admin, "big") if e["reason"] == "FailedScheduling"]
    assert (event["type"], event["message"]) == ("Warning", message)
    with pytest.raises(AssertionError):
        engine_of(gpu_server, "big")

    # Room made: it is placed at its next try and runs.
    assert admin.delete(ms_path("default", "small")).status_code == 200
    wait_for(admin, ms_path("default", "big"), phase("Ready"))
    assert [a["name"] for a in admin.get(node).json()["status"]["allocations"]] == ["big"]
    assert admin.delete(ms_path("default", "big")).status_code == 200
    deadline = time.monotonic() + 30
    while admin.get(node).json()["status"]["allocations"] and time.monotonic() < deadline:
        time.sleep(0.2)
    assert admin.get(node).json()["status"]["allocations"] == []
