"""Where a request's credential comes from: a bearer token, or the dashboard's cookie.

The dashboard keeps its session token in an ``HttpOnly``, ``SameSite=Strict``
cookie that page scripts cannot read. A cookie is sent by the browser on its
own, so a write authenticated by it must also carry the ``X-LLMOS-CSRF``
header: a page on another site cannot add a custom header without a CORS
preflight, which LLMOS never grants. Bearer tokens need no such header.
"""

from __future__ import annotations

from collections.abc import Iterable

from llmos.auth.errors import forbidden

SESSION_COOKIE = "llmos_session"
CSRF_HEADER = "x-llmos-csrf"
_CSRF = CSRF_HEADER.encode()
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def _cookie(header: str, name: str) -> str | None:
    for part in header.split(";"):
        key, sep, value = part.strip().partition("=")
        if sep and key == name and value:
            return value.strip('"')
    return None


def credential(
    headers: Iterable[tuple[bytes, bytes]],
    method: str,
    csrf_headers: frozenset[bytes] = frozenset({_CSRF}),
) -> str | None:
    """The token a request presents, or None; refuses a cookie write without CSRF header.

    ``csrf_headers`` are the header names that count as the custom header: the
    notebook proxy also takes Jupyter's own ``X-XSRFToken``, which its pages send.
    """
    cookies: list[str] = []
    has_csrf = False
    # ASGI servers give header names in lower case.
    for name, raw_value in headers:
        if name == b"authorization":
            scheme, _, token = raw_value.decode("latin-1").partition(" ")
            if scheme.lower() == "bearer" and token.strip():
                return token.strip()
        elif name == b"cookie":
            cookies.append(raw_value.decode("latin-1"))
        elif name in csrf_headers:
            has_csrf = True
    for header in cookies:
        session = _cookie(header, SESSION_COOKIE)
        if session is None:
            continue
        if method.upper() not in SAFE_METHODS and not has_csrf:
            raise forbidden(
                f"a write authenticated by the session cookie needs the {CSRF_HEADER} header "
                "(the dashboard sends it; API clients should send 'Authorization: Bearer TOKEN')"
            )
        return session
    return None
