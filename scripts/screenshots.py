"""Take the dashboard screenshots in docs/img/ from a real server and real Chromium.

    .venv/bin/python scripts/screenshots.py

Starts a server of its own (serving the bundled SmolLM2), logs in, sends a few
chat requests so the charts have data, starts a JupyterLab notebook, shoots each
page at 1280x720, and stops the server.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

from playwright.sync_api import sync_playwright

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from dashboard.conftest import CHROMIUM, CHROMIUM_ARGS  # noqa: E402
from gateway.conftest import PUBLIC_MS, wait_phase  # noqa: E402
from server import ADMIN_PASSWORD, start_server  # noqa: E402
from workloads.helpers import create, notebook, path  # noqa: E402

OUT = ROOT / "docs" / "img"
PAGES = {
    "home": "/",
    "models": "/models",
    "model-create": "/models/new",
    "model-detail": "/models/llmos-public/smollm2",
    "account": "/account",
    "notebook-detail": "/notebooks/default/lab",
}
FULL_PAGE = {"model-detail", "notebook-detail"}


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        server = start_server(
            Path(tmp) / "data", "--serve-bundled-model", "--metrics-interval", "2"
        )
        try:
            token = server.setup_admin()
            with server.client(token) as admin:
                wait_phase(admin, f"{PUBLIC_MS}/smollm2")
                for question in ("Hi!", "Name a colour.", "Count to five."):
                    admin.post(
                        "/v1/chat/completions",
                        json={
                            "model": "smollm2",
                            "max_tokens": 32,
                            "messages": [{"role": "user", "content": question}],
                        },
                    ).raise_for_status()
                # A notebook, for its detail page (status, Events, its live log).
                create(admin, "notebooks", "default", notebook("lab"))
                wait_phase(admin, path("notebooks", "default", "lab"))
            shoot(server.url)
        finally:
            server.stop()


def shoot(url: str) -> None:
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = browser.new_page(ignore_https_errors=True, viewport={"width": 1280, "height": 720})
        page.goto(f"{url}/")
        page.get_by_label("Username").fill("admin")
        page.get_by_label("Password").fill(ADMIN_PASSWORD)
        page.get_by_role("button", name="Log in").click()
        page.get_by_role("heading", name="Home", exact=True).wait_for()
        for name, route in PAGES.items():
            page.goto(f"{url}/#{route}")
            page.locator("main h1").wait_for()
            page.wait_for_timeout(1500)  # let live lists and charts draw (not a test)
            page.screenshot(path=str(OUT / f"{name}.png"), full_page=name in FULL_PAGE)
        page.goto(f"{url}/#/models/llmos-public/smollm2/chat")
        page.get_by_role("textbox", name="Message").fill("Write a haiku about GPUs.")
        page.get_by_role("button", name="Send").click()
        page.get_by_role("button", name="Send").wait_for(timeout=60_000)
        page.screenshot(path=str(OUT / "playground.png"))
        browser.close()


if __name__ == "__main__":
    main()
