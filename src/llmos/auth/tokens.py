"""Bearer tokens: ``NAME.SECRET``, where NAME is the Token object's name.

Only a SHA-256 of the whole token is stored. Tokens carry 256 random bits,
so a fast hash is right here (argon2 is for low-entropy passwords).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

PREFIX = "llmos"


def new_secret() -> str:
    return secrets.token_urlsafe(32)


def join(name: str, secret: str) -> str:
    return f"{name}.{secret}"


def split(token: str) -> tuple[str, str] | None:
    name, dot, secret = token.partition(".")
    if not dot or not name or not secret or len(token) > 512:
        return None
    return name, secret


def digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def matches(stored_digest: str, token: str) -> bool:
    return hmac.compare_digest(stored_digest, digest(token))
