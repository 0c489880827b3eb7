"""The dashboard in real Chromium: live lists, server-side validation, RBAC, keys, layout."""

from __future__ import annotations

import re
import time

import httpx
from playwright.sync_api import Page, expect

from conftest import go, log_in
from factories import bind, create_ms, create_namespace, create_user, modelservice, ms_path, unique
from server import ADMIN_PASSWORD, RunningServer

PAGES = ["Home", "Model Services", "Playground", "Notebooks", "Volumes", "Namespaces", "Users"]


def test_lists_follow_changes_without_reload(
    page: Page, server: RunningServer, admin: httpx.Client
) -> None:
    log_in(page, server, "admin", ADMIN_PASSWORD)
    go(page, "Model Services")
    reloads: list[str] = []
    page.on("load", lambda p: reloads.append(p.url))
    name = unique("live")
    create_ms(admin, "default", name)
    row = page.locator(f'tr[data-name="{name}"]')
    expect(row).to_be_visible()
    expect(row).to_contain_text("0/0")
    admin.patch(
        ms_path("default", name),
        json={"spec": {"replicas": 0, "servedModelName": "renamed"}},
        headers={"Content-Type": "application/merge-patch+json"},
    )
    expect(row).to_contain_text("default/renamed")
    admin.delete(ms_path("default", name))
    expect(row).to_have_count(0)
    assert reloads == []


def test_form_shows_the_servers_own_validation(
    page: Page, server: RunningServer, admin: httpx.Client
) -> None:
    log_in(page, server, "admin", ADMIN_PASSWORD)
    page.goto(f"{server.url}/#/models/new")
    name = page.get_by_label("Name", exact=True)
    name.fill("Bad_Name")
    expected = admin.post(
        ms_path("default") + "?dryRun=All", json=modelservice("Bad_Name", replicas=1)
    ).json()
    assert expected["code"] == 422
    message = next(c["message"] for c in expected["details"]["causes"] if "name" in c["field"])
    expect(page.locator("#ms-metadata-name-error")).to_have_text(message)
    expect(name).to_have_attribute("aria-invalid", "true")
    name.fill("good-name")
    expect(page.locator("#ms-metadata-name-error")).to_have_count(0)
    page.get_by_label("Replicas").fill("-1")
    expect(page.locator("#ms-spec-replicas-error")).to_contain_text("0")
    page.get_by_label("Replicas").fill("0")
    expect(page.get_by_text("the server accepts this")).to_be_visible()
    # The dry runs stored nothing.
    assert admin.get(ms_path("default", "good-name")).status_code == 404


def test_yaml_tab_round_trips_and_reports_unknown_fields(
    page: Page, server: RunningServer, admin: httpx.Client
) -> None:
    log_in(page, server, "admin", ADMIN_PASSWORD)
    page.goto(f"{server.url}/#/models/new")
    page.get_by_label("Name", exact=True).fill(name := unique("yaml"))
    page.get_by_role("tab", name="YAML").click()
    editor = page.get_by_label("ModelService (YAML)")
    expect(editor).to_have_value(re.compile(f"name: {name}"))
    text = editor.input_value().replace("replicas: 1", "replicas: 0\n  colour: blue")
    editor.fill(text)
    expect(page.get_by_role("alert").filter(has_text="spec.colour")).to_be_visible()
    editor.fill(text.replace("\n  colour: blue", ""))
    expect(page.get_by_text("the server accepts this")).to_be_visible()
    page.get_by_role("button", name="Deploy", exact=True).click()
    expect(page).to_have_url(re.compile(f"#/models/default/{name}$"))
    assert admin.get(ms_path("default", name)).json()["spec"]["replicas"] == 0
    admin.delete(ms_path("default", name))


def test_form_offers_modelscope_with_its_token_secret(page: Page, server: RunningServer) -> None:
    log_in(page, server, "admin", ADMIN_PASSWORD)
    page.goto(f"{server.url}/#/models/new")
    page.get_by_label("Name", exact=True).fill(unique("ms"))
    page.get_by_label("ModelScope model").check()
    page.get_by_label("Repository (org/name, or org/name:file.gguf)").fill("Qwen/Qwen2-0.5B")
    page.get_by_label("Token secret (optional)").fill("ms-token")
    page.get_by_label("Replicas").fill("0")
    expect(page.get_by_text("the server accepts this")).to_be_visible()
    page.get_by_role("tab", name="YAML").click()
    editor = page.get_by_label("ModelService (YAML)")
    expect(editor).to_have_value(re.compile("modelRegistry: modelscope"))
    expect(editor).to_have_value(re.compile("hfTokenSecret: ms-token"))
    # Back on the form, a local path keeps neither the registry nor the token.
    page.get_by_role("tab", name="Form").click()
    page.get_by_label("Local path on the node").check()
    expect(page.get_by_label("Token secret (optional)")).to_have_count(0)
    page.get_by_role("tab", name="YAML").click()
    expect(editor).to_have_value(re.compile("modelRegistry: local"))
    expect(editor).not_to_have_value(re.compile("hfTokenSecret"))


def test_a_user_sees_and_does_only_what_rbac_allows(
    page: Page, server: RunningServer, admin: httpx.Client
) -> None:
    user, mine = unique("bob"), unique("team")
    create_user(admin, user, "bob-password-1234")
    create_namespace(admin, mine)
    bind(admin, mine, user, "namespace-member")
    log_in(page, server, user, "bob-password-1234")
    nav = page.get_by_role("navigation", name="Main")
    expect(nav.get_by_role("link", name="Model Services")).to_be_visible()
    for hidden in ("Users", "Roles", "Namespaces", "Settings"):
        expect(nav.get_by_role("link", name=hidden)).to_have_count(0)
    page.goto(f"{server.url}/#/users")
    expect(page.get_by_text("This page is for administrators.")).to_be_visible()
    # A hidden button is not protection: the server refuses the same calls.
    response = page.context.request.get(f"{server.url}/apis/management.llmos.ai/v1/users")
    assert response.status == 403
    # The form offers the namespaces the user holds a role in, not llmos-public, which
    # users only read; YAML that names it gets the server's refusal as the user types.
    page.goto(f"{server.url}/#/models/new")
    namespace = page.get_by_label("Namespace")
    expect(namespace.locator("option")).to_have_text([mine])
    expect(page.get_by_text("the server accepts this")).to_be_visible()
    page.get_by_role("tab", name="YAML").click()
    editor = page.get_by_label("ModelService (YAML)")
    editor.fill(editor.input_value().replace(f"namespace: {mine}", "namespace: llmos-public"))
    expect(page.get_by_role("alert")).to_contain_text("may not create")
    response = page.context.request.post(
        f"{server.url}{ms_path('llmos-public')}",
        data=modelservice(unique("nope")),
        headers={"X-LLMOS-CSRF": "1"},
    )
    assert response.status == 403


def test_cookie_writes_need_the_csrf_header(page: Page, server: RunningServer) -> None:
    log_in(page, server, "admin", ADMIN_PASSWORD)
    expect(page.get_by_role("heading", name="Home", exact=True)).to_be_visible()
    cookies = {c["name"]: c for c in page.context.cookies()}
    session = cookies["llmos_session"]
    assert session["httpOnly"] and session["secure"] and session["sameSite"] == "Strict"
    body = {"metadata": {"name": unique("csrf")}}
    url = f"{server.url}/apis/management.llmos.ai/v1/namespaces"
    refused = page.context.request.post(url, data=body)
    assert refused.status == 403
    assert "x-llmos-csrf" in refused.json()["message"]
    accepted = page.context.request.post(url, data=body, headers={"X-LLMOS-CSRF": "1"})
    assert accepted.status == 201


def test_api_key_is_shown_once_works_and_can_be_revoked(page: Page, server: RunningServer) -> None:
    log_in(page, server, "admin", ADMIN_PASSWORD)
    go(page, "Account & API keys")
    page.get_by_label("Description").fill("from the dashboard")
    page.get_by_label("Requests per minute").fill("0")
    page.get_by_role("button", name="Create key").click()
    expect(page.locator("#key-rpm-error")).to_contain_text("greater than or equal to 1")
    page.get_by_label("Requests per minute").fill("60")
    page.get_by_role("button", name="Create key").click()
    dialog = page.get_by_role("dialog", name="Your new API key")
    expect(dialog).to_contain_text("it is not shown again")
    key = dialog.get_by_test_id("new-key").input_value()
    expect(dialog.locator("pre").first).to_contain_text(f"Bearer {key}")
    models = httpx.get(
        f"{server.url}/v1/models",
        headers={"Authorization": f"Bearer {key}"},
        verify=server.ssl_context(),
    )
    assert models.status_code == 200
    dialog.get_by_role("button", name="Done").click()
    name = key.split(".")[0]
    row = page.locator(f'tr[data-key="{name}"]')
    expect(row).to_contain_text("60 req/min")
    page.once("dialog", lambda d: d.accept())
    row.get_by_role("button", name=f"Revoke {name}").click()
    expect(row).to_have_count(0)
    gone = httpx.get(
        f"{server.url}/v1/models",
        headers={"Authorization": f"Bearer {key}"},
        verify=server.ssl_context(),
    )
    assert gone.status_code == 401


def test_admin_creates_a_user_and_logs_out(page: Page, server: RunningServer) -> None:
    log_in(page, server, "admin", ADMIN_PASSWORD)
    go(page, "Users")
    name = unique("carol")
    form = page.get_by_role("form", name="Create a user")
    form.get_by_label("Username").fill(name)
    form.get_by_label("Password", exact=True).fill("short")
    form.get_by_role("button", name="Create user").click()
    expect(form.locator("#user-password-error")).to_contain_text("at least")
    form.get_by_label("Password", exact=True).fill("carol-password-123")
    form.get_by_role("button", name="Create user").click()
    expect(page.locator(f'tr[data-user="{name}"]')).to_contain_text("user")
    page.get_by_role("button", name="Log out").click()
    expect(page.get_by_role("heading", name="Log in to LLMOS")).to_be_visible()
    assert page.context.request.get(f"{server.url}/v1-auth/me").status == 401


def test_every_page_fits_a_laptop_and_labels_its_controls(
    page: Page, server: RunningServer
) -> None:
    log_in(page, server, "admin", ADMIN_PASSWORD)
    routes = ["/", "/models", "/models/new", "/playground", "/notebooks", "/volumes", "/mlclusters"]
    routes += ["/namespaces", "/users"]
    routes += ["/roles", "/settings", "/account"]
    for route in routes:
        page.goto(f"{server.url}/#{route}")
        expect(page.locator("main h1")).to_be_visible()
        overflow = page.evaluate("() => document.documentElement.scrollWidth - innerWidth")
        assert overflow <= 0, f"#{route} scrolls sideways by {overflow}px at 1280x720"
        unlabelled = page.evaluate(
            """() => [...document.querySelectorAll('input, select, textarea')]
                .filter((e) => e.type !== 'hidden' && e.type !== 'radio' && e.type !== 'checkbox')
                .filter((e) => !e.labels.length && !e.getAttribute('aria-label'))
                .map((e) => e.outerHTML)"""
        )
        assert unlabelled == [], f"#{route} has controls without a label: {unlabelled}"


def test_keyboard_reaches_every_section(page: Page, server: RunningServer) -> None:
    log_in(page, server, "admin", ADMIN_PASSWORD)
    expect(page.get_by_role("heading", name="Home", exact=True)).to_be_visible()
    reached = set()
    for _ in range(30):
        page.keyboard.press("Tab")
        reached.add(page.evaluate("() => document.activeElement.textContent.trim()"))
    assert set(PAGES) <= reached, f"Tab never reached {set(PAGES) - reached}"


def test_a_live_page_leaves_the_browser_connections_for_other_tabs(
    page: Page, server: RunningServer
) -> None:
    """Browsers allow six HTTP/1.1 connections per host across tabs: the home page
    follows its seven lists through one stream, so another tab still loads."""
    log_in(page, server, "admin", ADMIN_PASSWORD)
    expect(page.locator("article.node")).to_be_visible()
    other = page.context.new_page()
    for _ in range(3):
        other.goto(f"{server.url}/v1-public/info", timeout=5_000)
        expect(other.locator("body")).to_contain_text("firstLogin")
    other.close()


def test_a_new_keys_snippet_calls_a_model_the_key_may_use(
    page: Page, server: RunningServer, admin: httpx.Client
) -> None:
    log_in(page, server, "admin", ADMIN_PASSWORD)
    go(page, "Account & API keys")
    page.get_by_label("Models").fill("default/only-this-one")
    page.get_by_role("button", name="Create key").click()
    dialog = page.get_by_role("dialog", name="Your new API key")
    expect(dialog.get_by_test_id("python-snippet")).to_contain_text('model="default/only-this-one"')
    dialog.get_by_role("button", name="Done").click()
    # A key for every model: the first model the user sees.
    create_ms(admin, "default", name := unique("snip"))
    first = admin.get("/v1/models").json()["data"][0]["id"]
    page.get_by_label("Models").fill("*")
    page.get_by_role("button", name="Create key").click()
    expect(dialog.get_by_test_id("python-snippet")).to_contain_text(f'model="{first}"')
    admin.delete(ms_path("default", name))


def test_a_chart_with_one_sample_spans_minutes_not_years(
    page: Page, server: RunningServer, admin: httpx.Client
) -> None:
    name = unique("chart")
    create_ms(admin, "default", name)
    sample = {"time": time.time(), "requestsPerSecond": 0.4, "tokensPerSecond": 4.5}
    page.route(
        f"**/modelservices/{name}/metrics",
        lambda route: route.fulfill(json={"intervalSeconds": 10, "points": [sample]}),
    )
    log_in(page, server, "admin", ADMIN_PASSWORD)
    page.goto(f"{server.url}/#/models/default/{name}")
    expect(page.get_by_label("Requests", exact=True)).to_contain_text("0.40 req/s")
    span = page.get_by_label("Requests", exact=True).locator(".chart-box")
    expect(span).to_have_attribute("data-x-span", re.compile(r"^\d{1,3}$"))
    admin.delete(ms_path("default", name))


def test_settings_show_whole_values_and_keep_first_login_read_only(
    page: Page, server: RunningServer
) -> None:
    log_in(page, server, "admin", ADMIN_PASSWORD)
    go(page, "Settings")
    row = page.locator('tr[data-setting="first-login"]')
    expect(row).to_contain_text("Kept by the server")
    expect(row.locator("input")).to_have_count(0)
    url = page.get_by_label("server-url", exact=True)
    expect(url).to_have_value(server.url)
    width = url.evaluate("(e) => e.getBoundingClientRect().width")
    assert width >= 240, f"the value box is {width}px wide"
