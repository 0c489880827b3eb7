"""Password hashing with argon2id, and the password rules users are told about."""

from __future__ import annotations

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from llmos._lib.errors import Cause, Reason
from llmos.auth.errors import AuthError

# RFC 9106's second recommended option (64 MiB is too much for a small box).
_HASHER = PasswordHasher(time_cost=3, memory_cost=65536 // 4, parallelism=2)


def hash_password(password: str) -> str:
    return _HASHER.hash(password)


def verify_password(password_hash: str, password: str) -> bool:
    try:
        return _HASHER.verify(password_hash, password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


def check_password_rules(password: object, min_length: int, field: str = "password") -> str:
    """Return the password, or raise an Invalid error that says what the rule is."""
    if not isinstance(password, str):
        raise AuthError(f"{field} must be a string", Reason.INVALID, causes=[Cause(field, "")])
    if len(password) < min_length:
        message = f"{field} must be at least {min_length} characters long (it has {len(password)})"
        raise AuthError(message, Reason.INVALID, causes=[Cause(field, message)])
    if len(password) > 256:
        message = f"{field} must be at most 256 characters long"
        raise AuthError(message, Reason.INVALID, causes=[Cause(field, message)])
    if not password.strip():
        message = f"{field} must not be only spaces"
        raise AuthError(message, Reason.INVALID, causes=[Cause(field, message)])
    if any(not c.isprintable() and c != "\t" for c in password):
        # A NUL or another control character: what a paste or a script slipped in, not a
        # character anyone can type at the login form.
        message = f"{field} must not contain control characters"
        raise AuthError(message, Reason.INVALID, causes=[Cause(field, message)])
    return password
