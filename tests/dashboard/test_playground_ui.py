"""The playground's conversation in real Chromium, with the gateway's answers played by the test:
turns that got no answer, and a conversation that outgrows its pane."""

from __future__ import annotations

import json
import uuid
from typing import Any

import httpx
from playwright.sync_api import Page, Route, expect

from conftest import log_in
from factories import create_ms, ms_path
from server import ADMIN_PASSWORD, RunningServer


def stream(text: str) -> str:
    """An OpenAI chat completion stream (server-sent events), one delta per line of text."""
    chunks = [{"choices": [{"delta": {"content": line}}]} for line in text.splitlines(True)]
    return "".join(f"data: {json.dumps(c)}\n\n" for c in chunks) + "data: [DONE]\n\n"


def test_turns_without_an_answer_are_not_sent_again_and_the_newest_stays_in_view(
    page: Page, server: RunningServer, admin: httpx.Client
) -> None:
    name = f"chat-{uuid.uuid4().hex[:6]}"
    create_ms(admin, "default", name)
    sent: list[list[dict[str, Any]]] = []
    held: list[Route] = []
    replies = iter(["refuse", "hold", "answer", "answer"])

    def gateway(route: Route) -> None:
        sent.append(route.request.post_data_json["messages"])
        reply = next(replies)
        if reply == "refuse":
            body = {"error": {"message": "max_tokens must be at least 1", "param": "max_tokens"}}
            route.fulfill(status=400, json=body)
        elif reply == "hold":
            held.append(route)  # never answered: the user stops it
        else:
            lines = "".join(f"line {i} of a long answer\n" for i in range(40))
            route.fulfill(headers={"Content-Type": "text/event-stream"}, body=stream(lines))

    page.route("**/v1/chat/completions", gateway)
    log_in(page, server, "admin", ADMIN_PASSWORD)
    page.goto(f"{server.url}/#/models/default/{name}/chat")
    message = page.get_by_role("textbox", name="Message")
    user_turns = page.locator('[data-role="user"]')

    message.fill("First, refused")
    page.get_by_role("button", name="Send").click()
    expect(page.locator("#chat-error")).to_contain_text("max_tokens must be at least 1")
    expect(user_turns.nth(0)).to_have_attribute("data-failed", "failed")
    expect(user_turns.nth(0)).to_contain_text("not sent with later messages")

    message.fill("Second, stopped")
    page.get_by_role("button", name="Send").click()
    page.get_by_role("button", name="Stop").click()
    expect(user_turns.nth(1)).to_have_attribute("data-failed", "stopped")
    expect(page.locator('[data-role="assistant"]')).to_have_count(0)

    message.fill("Third")
    page.get_by_role("button", name="Send").click()
    expect(page.locator('[data-role="assistant"]')).to_contain_text("line 39")
    message.fill("Fourth")
    page.get_by_role("button", name="Send").click()
    expect(page.locator('[data-role="assistant"]').nth(1)).to_contain_text("line 39")
    # Only the answered turn went back to the model, not the two without an answer.
    said = [(m["role"], m["content"][:6]) for m in sent[3] if m["role"] != "system"]
    assert said == [("user", "Third"), ("assistant", "line 0"), ("user", "Fourth")]
    # The pane follows the conversation down to the newest line.
    gap = page.get_by_label("Conversation").evaluate(
        "(e) => e.scrollHeight - e.scrollTop - e.clientHeight"
    )
    assert gap < 5, f"the newest message is {gap}px below the visible part"
    assert held
    admin.delete(ms_path("default", name))
