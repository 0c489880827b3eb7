"""The home page's GPUs, from recorded readings of a mixed node (2x A100 40GB + L4)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from conftest import log_in
from factories import create_ms, ms_path
from server import ADMIN_PASSWORD, RunningServer, start_server

MIXED = Path(__file__).parent.parent / "fixtures" / "gpus" / "mixed-a100-40gb-x2-l4-x1.json"


@pytest.fixture(scope="module")
def gpu_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    running = start_server(
        tmp_path_factory.mktemp("ui-gpus") / "data",
        "--gpu-fixture",
        str(MIXED),
        "--metrics-interval",
        "0.5",
    )
    running.setup_admin()
    yield running
    assert running.stop() == 0, running.log()


def test_admins_see_each_gpu_with_its_use_and_history(
    page: Page, gpu_server: RunningServer
) -> None:
    log_in(page, gpu_server, "admin", ADMIN_PASSWORD)
    cards = page.locator("article.gpu")
    expect(cards).to_have_count(3)
    expect(cards.nth(2)).to_contain_text("NVIDIA L4")
    expect(cards.nth(0)).to_contain_text("A100")
    expect(cards.nth(0).locator("[data-phase]")).to_have_attribute("data-phase", "Healthy")
    expect(cards.nth(0)).to_contain_text("Free")
    # The utilization chart draws from the server's history as points arrive.
    expect(cards.nth(0).locator("canvas")).to_have_count(1)
    expect(page.locator("article.node")).to_contain_text("3 NVIDIA GPUs")


def test_the_node_shows_what_workloads_reserve(page: Page, gpu_server: RunningServer) -> None:
    log_in(page, gpu_server, "admin", ADMIN_PASSWORD)
    reserved = page.locator("article.node .reserved")
    expect(reserved).to_have_text("Nothing reserved by workloads")
    path = ms_path("default", "held")
    with gpu_server.admin_client() as admin:
        create_ms(
            admin,
            "default",
            "held",
            replicas=1,
            engine="llama-cpp",
            resources={"cpu": "500m", "memory": "1Gi"},
        )
        # Reserved before its engine starts; the node's watch brings it in.
        expect(reserved).to_have_text("Reserved by workloads: 0.5 CPU, 1.0 GiB")
        assert admin.delete(path).status_code == 200
        expect(reserved).to_have_text("Nothing reserved by workloads")
