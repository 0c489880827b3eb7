"""What the workload proxy forwards: the browser's cookies without LLMOS's own, and the
workload's secret cookies in place of any the browser sent under the same names."""

from __future__ import annotations

from typing import Any

import httpx

from llmos.api.workload_proxy import Upstream, WorkloadProxy
from llmos.auth.credentials import SESSION_COOKIE

UPSTREAM = "http://127.0.0.1:1"


def forwarded_cookies(cookie: str | None, upstream: Upstream) -> list[str]:
    proxy = WorkloadProxy(auth=None, routes={})  # type: ignore[arg-type]  # _headers needs neither
    headers = [(b"host", b"llmos.example:8443")]
    if cookie is not None:
        headers.append((b"cookie", cookie.encode()))
    scope: dict[str, Any] = {"headers": headers, "client": ("10.0.0.9", 5000)}
    return [value for name, value in proxy._headers(scope, upstream) if name.lower() == "cookie"]


def test_the_llmos_session_cookie_stays_behind() -> None:
    cookie = f"{SESSION_COOKIE}=user-token; _xsrf=abc"
    assert forwarded_cookies(cookie, Upstream(UPSTREAM, "/")) == ["_xsrf=abc"]
    assert forwarded_cookies(f"{SESSION_COOKIE}=user-token", Upstream(UPSTREAM, "/")) == []


def test_the_workloads_cookie_replaces_the_browsers() -> None:
    upstream = Upstream(UPSTREAM, "/", cookies={"code-server-session": "secret"})
    cookie = f"{SESSION_COOKIE}=user-token; code-server-session=forged; theme=dark"
    assert forwarded_cookies(cookie, upstream) == ["theme=dark; code-server-session=secret"]
    assert forwarded_cookies(None, upstream) == ["code-server-session=secret"]


def test_a_workload_path_without_its_slash_is_redirected(admin: httpx.Client) -> None:
    response = admin.get("/notebooks/default/anything?x=1", follow_redirects=False)
    assert response.status_code == 308
    assert response.headers["location"] == "/notebooks/default/anything/?x=1"
