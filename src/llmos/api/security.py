"""Who is calling: the bearer token on each request, checked by AuthService."""

from __future__ import annotations

from fastapi import Request

from llmos.api.state import app_state
from llmos.auth.credentials import credential
from llmos.auth.errors import forbidden
from llmos.auth.rbac import Principal

# Paths a user who must still change the password may call.
PASSWORD_CHANGE_PATHS = frozenset(
    {"/v1-auth/me", "/v1-auth/first-login", "/v1-auth/password", "/v1-auth/logout"}
)


def bearer_token(request: Request) -> str | None:
    return credential(request.scope["headers"], request.method)


async def principal(request: Request) -> Principal:
    """FastAPI dependency: authenticate the request or raise 401."""
    who = await app_state(request).auth.authenticate(bearer_token(request))
    if who.must_change_password and request.url.path not in PASSWORD_CHANGE_PATHS:
        raise forbidden(
            f"user {who.user!r} must set a new password first: POST /v1-auth/first-login "
            "(or run `llmos login`)"
        )
    return who
