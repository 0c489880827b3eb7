"""GPU metrics and history on a real server reading recorded GPUs (8x H100 80GB)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from server import RunningServer, start_server

FIXTURE = Path(__file__).parent.parent / "fixtures" / "gpus" / "h100-80gb-x8.json"


@pytest.fixture(scope="module")
def h100_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    running = start_server(
        tmp_path_factory.mktemp("h100") / "data",
        "--gpu-fixture",
        str(FIXTURE),
        "--metrics-interval",
        "0.5",
    )
    running.admin_token = running.setup_admin()  # type: ignore[attr-defined]
    yield running
    assert running.stop() == 0, running.log()


def test_every_gpu_has_its_series(h100_server: RunningServer) -> None:
    with h100_server.client(h100_server.admin_token) as admin:  # type: ignore[attr-defined]
        text = admin.get("/metrics").text
    samples: dict[str, list[tuple[dict[str, str], float]]] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            samples.setdefault(sample.name, []).append((sample.labels, sample.value))
    totals = samples["llmos_gpu_memory_total_bytes"]
    assert sorted(int(labels["gpu"]) for labels, _ in totals) == list(range(8))
    assert all("H100" in labels["model"] and value > 79 * 2**30 for labels, value in totals)
    for name in (
        "llmos_gpu_utilization_ratio",
        "llmos_gpu_memory_used_bytes",
        "llmos_gpu_temperature_celsius",
        "llmos_gpu_power_watts",
        "llmos_gpu_healthy",
    ):
        assert len(samples[name]) == 8, name
    assert all(0 <= value <= 1 for _, value in samples["llmos_gpu_utilization_ratio"])
    assert {labels["type"] for labels, _ in samples["llmos_gpu_ecc_errors_total"]} == {
        "corrected",
        "uncorrected",
    }


def test_gpu_history_for_charts(h100_server: RunningServer) -> None:
    with h100_server.client(h100_server.admin_token) as admin:  # type: ignore[attr-defined]
        devices = admin.get("/apis/node.llmos.ai/v1/gpudevices").json()["items"]
        name = sorted(d["metadata"]["name"] for d in devices)[0]
        deadline = time.monotonic() + 20
        points: list[dict[str, float]] = []
        while time.monotonic() < deadline and len(points) < 3:
            body = admin.get(f"/apis/node.llmos.ai/v1/gpudevices/{name}/metrics").json()
            points = body["points"]
            time.sleep(0.25)
        assert len(points) >= 3
        assert body["intervalSeconds"] == 0.5
        assert all(0 <= p["utilizationPercent"] <= 100 for p in points)
        assert all(p["memoryUsedBytes"] >= 0 for p in points)
        assert points[-1]["time"] > points[0]["time"]
        assert admin.get("/apis/node.llmos.ai/v1/gpudevices/nope/metrics").status_code == 404
    with httpx.Client(base_url=h100_server.url, verify=h100_server.ssl_context()) as anonymous:
        assert anonymous.get(f"/apis/node.llmos.ai/v1/gpudevices/{name}/metrics").status_code == 401
