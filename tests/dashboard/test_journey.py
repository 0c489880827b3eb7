"""The journey a new user takes, in real Chromium: set up, deploy SmolLM2, chat with it."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Page, Request, expect

from conftest import go, log_in
from server import RunningServer, start_server
from workloads.helpers import wait_for

NEW_PASSWORD = "journey-password-456"


@pytest.fixture
def new_server(tmp_path: Path) -> Iterator[RunningServer]:
    running = start_server(tmp_path / "data")
    yield running
    assert running.stop() == 0, running.log()


def test_first_login_deploy_and_chat(page: Page, new_server: RunningServer) -> None:
    server = new_server
    # 1. Log in with the bootstrap password; set a new password and the server URL.
    log_in(page, server, "admin", server.bootstrap_password())
    expect(page.get_by_role("heading", name="Welcome to LLMOS")).to_be_visible()
    page.get_by_label("New password", exact=True).fill(NEW_PASSWORD)
    page.get_by_label("Confirm new password").fill(NEW_PASSWORD)
    page.get_by_label("Server URL").fill(server.url)
    page.get_by_role("button", name="Save and continue").click()
    expect(page.get_by_role("heading", name="Home", exact=True)).to_be_visible()
    info = httpx.get(f"{server.url}/v1-public/info", verify=server.ssl_context()).json()
    assert info["firstLogin"] is False
    assert info["serverUrl"] == server.url
    assert server.login("admin", NEW_PASSWORD)

    # From here on the page must never reload: every change arrives by watch.
    reloads: list[str] = []
    page.on("load", lambda p: reloads.append(p.url))

    # 2. Deploy the bundled SmolLM2 from the form and watch it become Ready.
    go(page, "Model Services")
    page.get_by_role("link", name="Deploy a model").first.click()
    expect(page.get_by_label("Name", exact=True)).to_have_value("smollm2")
    expect(page.get_by_text("the server accepts this")).to_be_visible()
    page.get_by_role("button", name="Deploy", exact=True).click()
    expect(page).to_have_url(re.compile(r"#/models/default/smollm2$"))
    phase = page.locator("h1 [data-phase]")
    expect(phase).to_have_attribute("data-phase", "Ready", timeout=180_000)
    expect(page.get_by_test_id("replicas")).to_have_text("1 ready of 1")
    # Its lifecycle Events, as they were recorded.
    events = page.locator("table.events tbody tr")
    expect(events.filter(has_text="Scheduled")).to_have_count(1)
    expect(events.filter(has_text="Started")).to_contain_text("replica 0 started (pid ")
    expect(events.filter(has_text="replica 0 is ready on port ")).to_have_count(1)
    expect(page.locator("pre.logs")).to_contain_text("llama", timeout=30_000)

    # 3. Chat in the playground and see the answer arrive in pieces.
    page.get_by_role("link", name="Open playground").click()
    expect(page.get_by_label("Model")).to_have_value("default/smollm2")
    page.get_by_label("System prompt").fill("You are a terse assistant.")
    temperature = page.get_by_label(re.compile("^Temperature"))
    temperature.focus()
    page.keyboard.press("Home")  # 0.0
    page.keyboard.press("ArrowRight")
    page.keyboard.press("ArrowRight")  # 0.2
    expect(page.get_by_text("Temperature: 0.2")).to_be_visible()
    sent: list[Request] = []
    page.on("request", lambda r: sent.append(r) if r.url.endswith("/v1/chat/completions") else None)
    page.get_by_role("textbox", name="Message").fill("Name three colours.")
    page.get_by_role("button", name="Send").click()
    answer = page.locator('[data-role="assistant"] .content').last
    chunks = page.get_by_test_id("chunks")
    # Streamed: the answer is drawn piece by piece, one delta at a time.
    expect(chunks).to_have_attribute("data-chunks", re.compile(r"^([2-9]|\d\d+)$"), timeout=60_000)
    expect(page.get_by_role("button", name="Send")).to_be_visible(timeout=60_000)
    assert int(chunks.get_attribute("data-chunks") or 0) > 1
    assert answer.inner_text().strip() not in ("", "…")

    body = sent[0].post_data_json
    assert body["stream"] is True
    assert body["temperature"] == pytest.approx(0.2)
    assert body["model"] == "default/smollm2"
    assert body["messages"][0] == {"role": "system", "content": "You are a terse assistant."}
    assert body["max_tokens"] == 256
    # An emptied "Max tokens" is left out of the request (0 would be refused), not sent as 0.
    page.get_by_label("Max tokens").fill("")
    page.get_by_role("textbox", name="Message").fill("And one more.")
    page.get_by_role("button", name="Send").click()
    expect(page.locator('[data-role="assistant"] .content')).to_have_count(2, timeout=60_000)
    expect(page.get_by_role("button", name="Send")).to_be_visible(timeout=60_000)
    assert "max_tokens" not in sent[1].post_data_json
    expect(page.get_by_role("alert")).to_have_count(0)
    assert reloads == []

    # The metric history behind the detail page's charts counted the requests (a point
    # every 10 s), and the page draws its charts from it.
    token = server.login("admin", NEW_PASSWORD)
    path = "/apis/ml.llmos.ai/v1/namespaces/default/modelservices/smollm2"
    with server.client(token) as admin:
        wait_for(
            admin,
            f"{path}/metrics",
            lambda history: any(p["requestsPerSecond"] > 0 for p in history["points"]),
            "a point with the chats in the metric history",
            timeout=30,
        )
        page.go_back()
        expect(page).to_have_url(re.compile(r"#/models/default/smollm2$"))
        requests = page.get_by_label("Requests", exact=True).locator("figcaption b")
        expect(requests).to_have_text(re.compile(r"^\d+\.\d\d req/s$"), timeout=30_000)
        assert reloads == []
        admin.delete(path)
