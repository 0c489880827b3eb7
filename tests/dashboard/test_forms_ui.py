"""The dashboard's forms in real Chromium: where they create, and how they show errors."""

from __future__ import annotations

import re

import httpx
from playwright.sync_api import Page, Request, expect

from conftest import go, log_in
from factories import MGMT, ML, bind, create_ms, create_namespace, create_user, ms_path, unique
from server import ADMIN_PASSWORD, RunningServer


def test_forms_start_in_a_namespace_the_user_may_use(
    page: Page, server: RunningServer, admin: httpx.Client
) -> None:
    user, team = unique("dora"), unique("team")
    create_user(admin, user, "dora-password-1234")
    create_namespace(admin, team)
    bind(admin, team, user, "namespace-member")
    refused: list[str] = []
    page.on("response", lambda r: refused.append(r.url) if r.status == 403 else None)
    log_in(page, server, user, "dora-password-1234")

    go(page, "Volumes")
    form = page.get_by_role("form", name="Create a volume")
    expect(form.get_by_label("Namespace")).to_have_value(team)
    form.get_by_label("Name", exact=True).fill(vol := unique("vol"))
    form.get_by_label("Capacity").fill("1Gi")
    form.get_by_role("button", name="Create volume").click()
    expect(page.locator(f'tr[data-name="{vol}"]')).to_contain_text(team)

    go(page, "Notebooks")
    form = page.get_by_role("form", name="Create a notebook")
    expect(form.get_by_label("Namespace")).to_have_value(team)
    # The volumes offered are the chosen namespace's.
    offered = form.get_by_label("Volume (working dir)").locator("option")
    expect(offered.filter(has_text=vol)).to_have_count(1)
    go(page, "ML Clusters")
    form = page.get_by_role("form", name="Create a Ray cluster")
    expect(form.get_by_label("Namespace")).to_have_value(team)
    go(page, "Model Services")
    page.get_by_role("link", name="Deploy a model").first.click()
    expect(page.get_by_label("Namespace")).to_have_value(team)
    expect(page.get_by_text("the server accepts this")).to_be_visible()
    assert not [url for url in refused if "/namespaces/default/" in url], refused
    admin.delete(f"{ML}/namespaces/{team}/volumes/{vol}")


def test_yaml_without_a_namespace_goes_where_the_form_says(
    page: Page, server: RunningServer, admin: httpx.Client
) -> None:
    team, name = unique("yns"), unique("yaml")
    create_namespace(admin, team)
    log_in(page, server, "admin", ADMIN_PASSWORD)
    page.goto(f"{server.url}/#/models/new")
    page.get_by_label("Name", exact=True).fill(name)
    page.get_by_label("Namespace").select_option(team)
    page.get_by_role("tab", name="YAML").click()
    editor = page.get_by_label("ModelService (YAML)")
    expect(editor).to_have_value(re.compile(f"namespace: {team}"))
    text = editor.input_value().replace(f"  namespace: {team}\n", "")
    # A field's message names the field once.
    editor.fill(text.replace("replicas: 1", "replicas: -3"))
    problem = page.get_by_role("alert").locator("li")
    expect(problem).to_contain_text("spec.replicas: Input should be greater than or equal to 0")
    expect(problem).not_to_contain_text("spec.replicas: spec.replicas")
    editor.fill(text.replace("replicas: 1", "replicas: 0"))
    expect(page.get_by_text("the server accepts this")).to_be_visible()
    page.get_by_role("button", name="Deploy", exact=True).click()
    expect(page).to_have_url(re.compile(f"#/models/{team}/{name}$"))
    admin.delete(ms_path(team, name))


def test_a_field_error_shows_once_and_goes_when_corrected(
    page: Page, server: RunningServer, admin: httpx.Client
) -> None:
    log_in(page, server, "admin", ADMIN_PASSWORD)
    go(page, "Notebooks")
    form = page.get_by_role("form", name="Create a notebook")
    form.get_by_label("Name", exact=True).fill(unique("nb-neg"))
    idle = form.get_by_label("Stop when idle for (minutes)")
    idle.fill("-5")
    form.get_by_role("button", name="Create notebook").click()
    expect(form.locator("#nb-idle-error")).to_have_text("Input should be greater than 0")
    expect(form.get_by_role("alert")).to_have_count(1)
    idle.fill("5")
    expect(form.get_by_role("alert")).to_have_count(0)

    # An error beside a button goes too once its input changes.
    name = unique("scale")
    create_ms(admin, "default", name)
    page.goto(f"{server.url}/#/models/default/{name}")
    scale = page.get_by_role("form", name="Scale")
    scale.get_by_label("Replicas").fill("1000")
    scale.get_by_role("button", name="Scale").click()
    expect(scale.get_by_role("alert")).to_be_visible()
    scale.get_by_label("Replicas").fill("0")
    expect(scale.get_by_role("alert")).to_have_count(0)
    admin.delete(ms_path("default", name))


def test_setting_a_new_password_says_each_problem_once(
    page: Page, server: RunningServer, admin: httpx.Client
) -> None:
    user = unique("erin")
    body = {
        "metadata": {"name": user},
        "spec": {"password": "erin-password-1234", "mustChangePassword": True},
    }
    assert admin.post(f"{MGMT}/users", json=body).status_code == 201
    log_in(page, server, user, "erin-password-1234")
    form = page.get_by_role("form", name="Set a new password")
    form.get_by_label("Current password").fill("erin-password-1234")
    form.get_by_label("New password", exact=True).fill("short")
    form.get_by_label("Confirm new password").fill("short")
    form.get_by_role("button", name="Save and continue").click()
    expect(form.locator("#setup-password-error")).to_contain_text("at least 12 characters")
    expect(form.get_by_role("alert")).to_have_count(1)
    form.get_by_label("New password", exact=True).fill("erin-new-password-1")
    expect(form.get_by_role("alert")).to_have_count(0)
    form.get_by_role("button", name="Save and continue").click()
    expect(form.locator("#setup-confirm-error")).to_have_text("The two passwords differ.")
    form.get_by_label("Confirm new password").fill("erin-new-password-1")
    expect(form.get_by_role("alert")).to_have_count(0)
    sent: list[Request] = []
    page.on("request", lambda r: sent.append(r) if r.url.endswith("/v1-auth/password") else None)
    form.get_by_role("button", name="Save and continue").click()
    expect(page.get_by_role("heading", name="Home", exact=True)).to_be_visible()
    assert len(sent) == 1
