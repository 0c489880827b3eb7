"""What users type, and the links they open, reach the server as they meant them."""

from __future__ import annotations

import re

import httpx
from playwright.sync_api import Page, expect

from conftest import go, log_in
from factories import MGMT, bind, create_ms, create_namespace, create_user, ms_path, unique
from server import ADMIN_PASSWORD, RunningServer


def test_engine_arguments_keep_the_spaces_typed_between_them(
    page: Page, server: RunningServer
) -> None:
    log_in(page, server, "admin", ADMIN_PASSWORD)
    page.goto(f"{server.url}/#/models/new")
    args = page.get_by_label("Engine arguments (optional)")
    args.press_sequentially("--n_ctx 2048  --seed 7")  # key by key, as a person types
    expect(args).to_have_value("--n_ctx 2048  --seed 7")
    page.get_by_role("tab", name="YAML").click()
    editor = page.get_by_label("ModelService (YAML)")
    expect(editor).to_have_value(re.compile(r"engineArgs:\n\s+- --n_ctx\n\s+- \"2048\"\n"))
    expect(page.get_by_text("the server accepts this")).to_be_visible()
    # YAML that does not parse is not "accepted", whatever the last good one was.
    editor.fill("spec: [")
    expect(page.locator("#ms-yaml-error")).to_be_visible()
    expect(page.get_by_text("the server accepts this")).to_have_count(0)


def test_an_empty_scale_box_is_refused_not_read_as_zero(
    page: Page, server: RunningServer, admin: httpx.Client
) -> None:
    name = unique("keep")
    create_ms(admin, "default", name, replicas=0)
    log_in(page, server, "admin", ADMIN_PASSWORD)
    page.goto(f"{server.url}/#/models/default/{name}")
    scale = page.get_by_role("form", name="Scale")
    scale.get_by_label("Replicas").fill("1")
    scale.get_by_label("Replicas").fill("")
    scale.get_by_role("button", name="Scale").click()
    expect(scale.get_by_role("alert")).to_contain_text(
        'spec.replicas: must be a whole number, not ""'
    )
    assert admin.get(ms_path("default", name)).json()["spec"]["replicas"] == 0
    admin.delete(ms_path("default", name))


def test_a_malformed_link_says_so(page: Page, server: RunningServer) -> None:
    log_in(page, server, "admin", ADMIN_PASSWORD)
    expect(page.get_by_role("heading", name="Home", exact=True)).to_be_visible()
    page.goto(f"{server.url}/#/models/default/%E0%A4%A")
    expect(page.get_by_role("heading", name="Not found")).to_be_visible()
    expect(page.get_by_text("This link is malformed.")).to_be_visible()
    page.reload()  # opened afresh too (the page fixture fails on any uncaught error)
    expect(page.get_by_text("This link is malformed.")).to_be_visible()


def test_the_playground_does_not_swap_a_linked_model_for_another(
    page: Page, server: RunningServer
) -> None:
    log_in(page, server, "admin", ADMIN_PASSWORD)
    page.goto(f"{server.url}/#/models/default/no-such-model/chat")
    expect(page.locator("#chat-error")).to_contain_text(
        "There is no model service default/no-such-model"
    )
    expect(page.get_by_role("button", name="Send")).to_be_disabled()


def test_forms_offer_only_namespaces_the_user_holds_a_role_in(
    page: Page, server: RunningServer, admin: httpx.Client
) -> None:
    user, team = unique("finn"), unique("team")
    create_user(admin, user, "finn-password-1234")
    create_namespace(admin, team)
    bind(admin, team, user, "namespace-member")
    log_in(page, server, user, "finn-password-1234")
    go(page, "Volumes")
    offered = page.get_by_role("form", name="Create a volume").get_by_label("Namespace")
    expect(offered.locator("option")).to_have_text([team])  # not llmos-public, read-only
    go(page, "Account & API keys")
    expect(page.get_by_text(team, exact=True)).to_be_visible()


def test_a_user_who_must_change_the_password_can_log_out_instead(
    page: Page, server: RunningServer, admin: httpx.Client
) -> None:
    user = unique("gus")
    body = {
        "metadata": {"name": user},
        "spec": {"password": "gus-password-1234", "mustChangePassword": True},
    }
    assert admin.post(f"{MGMT}/users", json=body).status_code == 201
    log_in(page, server, user, "gus-password-1234")
    form = page.get_by_role("form", name="Set a new password")
    form.get_by_role("button", name="Log out").click()
    expect(page.get_by_role("button", name="Log in")).to_be_visible()
