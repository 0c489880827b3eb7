"""Errors of authentication and authorization."""

from __future__ import annotations

from llmos._lib.errors import LLMOSError, Reason


class AuthError(LLMOSError):
    """Root of the auth package's errors."""

    # What is wrong, without the advice the message adds (e.g. "the token has expired").
    problem: str = ""


def unauthorized(message: str = "missing or invalid credentials") -> AuthError:
    error = AuthError(
        f"{message}: log in with POST /v1-public/auth/login and send the token as "
        "'Authorization: Bearer TOKEN'",
        Reason.UNAUTHORIZED,
    )
    error.problem = message
    return error


def forbidden(message: str) -> AuthError:
    return AuthError(message, Reason.FORBIDDEN)
