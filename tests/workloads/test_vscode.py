"""VS Code (code-server) notebooks through the LLMOS proxy: the workbench renders in headless
Debian Chromium after a dashboard login, RBAC guards the path, and code-server's own port lets
no one in without the notebook's secret."""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from helpers import create, notebook, path, phase_is, wait_for
from playwright.sync_api import expect, sync_playwright
from websockets.exceptions import InvalidStatus
from websockets.sync.client import connect

from dashboard.conftest import CHROMIUM, CHROMIUM_ARGS
from factories import create_namespace, create_user, unique
from llmos._lib.keys import ServerKey
from llmos.controllers.notebook_launch import CODE_SERVER_COOKIE, code_server_path
from processes import descendants
from server import ADMIN_PASSWORD, RunningServer

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
SCREENSHOT = ROOT / "docs" / "screenshots" / "vscode.png"


def code_server_port(server: RunningServer, working_dir: str) -> int:
    """The port code-server bound, read from its command line (status does not show it)."""
    for _, argv in descendants(server.pid):
        if working_dir in argv:
            for arg in argv:
                if arg.startswith("--bind-addr=127.0.0.1:"):
                    return int(arg.rsplit(":", 1)[1])
    raise AssertionError(f"no code-server process serves {working_dir}")


def notebook_secret(server: RunningServer, uid: str) -> str:
    """What the server derives for the notebook (test-only: the key never leaves the server)."""
    return ServerKey(server.data_dir / "notebooks" / ".key").derive(uid)


@pytest.fixture(scope="module")
def vscode(server: RunningServer) -> Iterator[dict[str, str]]:
    """One Ready VS Code notebook in a namespace of its own."""
    if code_server_path() is None:
        pytest.fail("code-server is not installed: run scripts/setup --vscode (or --dev)")
    with server.client(server.admin_token) as admin:  # type: ignore[attr-defined]
        namespace, name = unique("vsteam"), unique("code")
        create_namespace(admin, namespace)
        create(admin, "notebooks", namespace, notebook(name, type="vscode"))
        ready = wait_for(admin, path("notebooks", namespace, name), phase_is("Ready"), "Ready", 120)
        yield {
            "namespace": namespace,
            "name": name,
            "uid": ready["metadata"]["uid"],
            "workingDir": ready["status"]["workingDir"],
            "base": f"/notebooks/{namespace}/{name}/",
        }
        admin.delete(path("notebooks", namespace, name))
        admin.delete(f"/apis/management.llmos.ai/v1/namespaces/{namespace}")


def test_the_workbench_loads_through_the_proxy_in_chromium(
    server: RunningServer, vscode: dict[str, str], tmp_path: Path
) -> None:
    # A file in the working dir: the explorer lists it only once VS Code's WebSocket to its
    # server (through the proxy) works, not just its HTML.
    (Path(vscode["workingDir"]) / "from-llmos.txt").write_text("hello from LLMOS\n")
    errors: list[str] = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            # Service workers (VS Code's webviews) refuse the server's self-signed certificate
            # unless Chromium itself ignores certificate errors, not only the context.
            executable_path=CHROMIUM,
            headless=True,
            args=[*CHROMIUM_ARGS, "--ignore-certificate-errors"],
        )
        try:
            context = browser.new_context(
                ignore_https_errors=True, viewport={"width": 1280, "height": 720}
            )
            context.set_default_timeout(60_000)
            page = context.new_page()
            page.on("pageerror", lambda error: errors.append(str(error)))
            page.goto(f"{server.url}/")
            page.get_by_label("Username").fill("admin")
            page.get_by_label("Password").fill(ADMIN_PASSWORD)
            page.get_by_role("button", name="Log in").click()
            page.get_by_role("navigation", name="Main").wait_for()
            # Leave the dashboard first: its watch streams hold every one of the six HTTP/1.1
            # connections Chromium opens to a host, so nothing else could load meanwhile.
            page.goto("about:blank")

            page.goto(f"{server.url}{vscode['base']}")
            page.locator(".monaco-workbench").wait_for()
            page.get_by_role("treeitem", name="from-llmos.txt").wait_for()

            # Search runs Debian's ripgrep, linked in by scripts/setup-vscode.sh.
            page.keyboard.press("Control+Shift+F")
            page.get_by_label("Search: Type Search Term", exact=False).fill("hello from LLMOS")
            page.locator(".search-view .results").get_by_text("hello from LLMOS").wait_for()

            # A terminal (node-pty, built from source) in the working dir, over the WebSocket.
            page.keyboard.press("Control+Backquote")
            # The tab is named after the shell once its process runs; then it takes keys.
            page.locator(".single-terminal-tab").filter(has_text=re.compile(r"\w")).wait_for()
            page.locator(".terminal-wrapper.active .xterm").click()
            expect(page.locator(".terminal-wrapper.active .xterm-helper-textarea")).to_be_focused()
            page.keyboard.type("pwd > from-terminal.txt\n")
            page.keyboard.press("Control+Shift+E")  # back to the explorer, which lists it
            page.get_by_role("treeitem", name="from-terminal.txt").wait_for()
            written = Path(vscode["workingDir"]) / "from-terminal.txt"
            assert written.read_text().strip() == vscode["workingDir"]
            page.get_by_role("treeitem", name="from-llmos.txt").click()
            page.locator(".monaco-editor .view-lines").get_by_text("hello from LLMOS").wait_for()

            # The docs' screenshot is refreshed on request only: tests leave the tree alone.
            shot = SCREENSHOT if os.environ.get("LLMOS_UPDATE_SCREENSHOTS") else tmp_path / "vs.png"
            shot.parent.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(shot))
            assert page.url.startswith(f"{server.url}{vscode['base']}")
            # The secret stays on the server: the browser holds no code-server cookie.
            assert CODE_SERVER_COOKIE not in {c["name"] for c in context.cookies()}
            context.close()
        finally:
            browser.close()
    assert errors == [], f"the page threw: {errors}"
    assert SCREENSHOT.stat().st_size > 10_000


def test_only_users_who_may_run_code_reach_it(
    server: RunningServer, admin: httpx.Client, vscode: dict[str, str]
) -> None:
    base = vscode["base"]
    # Through the proxy the admin is let in: code-server sends it on to the folder, not to its
    # login page, and the page it serves does not carry the secret.
    opened = admin.get(base)
    assert opened.status_code == 302, opened.text
    assert "login" not in opened.headers["location"]
    workbench = admin.get(f"{base}{opened.headers['location'].removeprefix('./')}")
    assert workbench.status_code == 200
    assert notebook_secret(server, vscode["uid"]) not in workbench.text

    outsider = unique("out")
    create_user(admin, outsider, f"{outsider}-password-1")
    token = server.login(outsider, f"{outsider}-password-1")
    with server.client(token) as client:
        refused = client.get(base)
        assert refused.status_code == 403, refused.text
    with server.client() as anonymous:
        assert anonymous.get(base).status_code == 401


def test_code_servers_own_port_wants_the_secret(
    server: RunningServer, vscode: dict[str, str]
) -> None:
    port = code_server_port(server, vscode["workingDir"])
    direct = f"http://127.0.0.1:{port}"
    wrong = {"Cookie": f"{CODE_SERVER_COOKIE}={'0' * 64}"}
    with httpx.Client(base_url=direct, timeout=10) as client:
        for headers in ({}, wrong):
            response = client.get("/", headers=headers)
            assert response.status_code == 302
            assert response.headers["location"] == "./login"
        # No password opens it: the form wants one whose SHA-256 is the secret.
        login = client.post("/login", data={"password": "", "base": "."})
        assert CODE_SERVER_COOKIE not in login.cookies
        # The secret itself, which only the server knows, is what lets a request in.
        secret = {"Cookie": f"{CODE_SERVER_COOKIE}={notebook_secret(server, vscode['uid'])}"}
        response = client.get("/", headers=secret)
        assert response.status_code == 302
        assert response.headers["location"].startswith("./?folder=")
    # VS Code's own WebSocket refuses the handshake too.
    with (
        pytest.raises(InvalidStatus) as refused,
        connect(f"ws://127.0.0.1:{port}/?reconnectionToken=t&reconnection=false", open_timeout=10),
    ):
        pass
    assert refused.value.response.status_code in (401, 403)
