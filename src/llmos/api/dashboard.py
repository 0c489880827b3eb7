"""The dashboard: one HTML page at ``/`` and its ES modules under ``/ui/``.

No build step: the page's own modules live in ``api/ui/`` beside this file,
and its few front-end packages (Preact, htm, uPlot) come from the npm
registry into ``api/ui/node_modules`` at install time (``scripts/setup``
runs ``npm ci``). An import map in ``index.html`` names them; the page's
Content-Security-Policy allows that one inline script by its hash and
nothing else inline, and no origin but this server's.
"""

from __future__ import annotations

import base64
import hashlib
import re
from pathlib import Path

from fastapi import APIRouter, FastAPI
from starlette.responses import HTMLResponse, Response
from starlette.staticfiles import StaticFiles

UI_DIR = Path(__file__).with_name("ui")
VENDOR = ("preact", "htm", "uplot")

_MISSING = """<!doctype html><meta charset="utf-8"><title>LLMOS</title>
<h1>The LLMOS dashboard is not installed</h1>
<p>Its front-end packages are missing from <code>{path}</code>.
Run <code>scripts/setup</code> from the LLMOS source tree (it runs
<code>npm ci</code> there), then reload this page. The API on this port works without it.</p>
"""


def _csp(html: str) -> str:
    hashes = " ".join(
        "'sha256-" + base64.b64encode(hashlib.sha256(body.encode()).digest()).decode() + "'"
        for body in re.findall(r'<script type="importmap">(.*?)</script>', html, re.S)
    )
    return (
        "default-src 'self'; "
        f"script-src 'self' {hashes}; "
        "style-src 'self' 'unsafe-inline'; "
        "img-src 'self' data:; "
        "connect-src 'self'; "
        "frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
    )


def missing_packages(ui_dir: Path = UI_DIR) -> list[str]:
    return [name for name in VENDOR if not (ui_dir / "node_modules" / name).is_dir()]


def install(app: FastAPI, ui_dir: Path = UI_DIR) -> None:
    router = APIRouter(include_in_schema=False)
    html = (ui_dir / "index.html").read_text()
    headers = {
        "Content-Security-Policy": _csp(html),
        "Cache-Control": "no-cache",
        "X-Content-Type-Options": "nosniff",
        "X-Frame-Options": "DENY",
        "Referrer-Policy": "no-referrer",
    }

    @router.get("/")
    async def index() -> Response:
        missing = missing_packages(ui_dir)
        if missing:
            return HTMLResponse(
                _MISSING.format(path=ui_dir / "node_modules"), status_code=503, headers=headers
            )
        return HTMLResponse(html, headers=headers)

    app.include_router(router)
    app.mount("/ui", StaticFiles(directory=ui_dir), name="ui")
