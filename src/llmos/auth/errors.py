"""Errors of authentication and authorization."""

from __future__ import annotations

from llmos._lib.errors import LLMOSError, Reason


class AuthError(LLMOSError):
    """Root of the auth package's errors."""


def unauthorized(message: str = "missing or invalid credentials") -> AuthError:
    return AuthError(
        f"{message}: log in with POST /v1-public/auth/login and send the token as "
        "'Authorization: Bearer TOKEN'",
        Reason.UNAUTHORIZED,
    )


def forbidden(message: str) -> AuthError:
    return AuthError(message, Reason.FORBIDDEN)
