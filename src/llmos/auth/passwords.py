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


def check_password_rules(
    password: object, min_length: int, field: str = "password", words: str = "the password"
) -> str:
    """Return the password, or raise an Invalid error that says what the rule is: the
    message speaks of `words` (what a person typed), the cause names `field` (what a
    client sent)."""

    def refuse(rule: str) -> AuthError:
        message = f"{words} {rule}"
        return AuthError(message, Reason.INVALID, causes=[Cause(field, message)])

    if not isinstance(password, str):
        raise refuse("must be a string")
    if len(password) < min_length:
        raise refuse(f"must be at least {min_length} characters long (it has {len(password)})")
    if len(password) > 256:
        raise refuse("must be at most 256 characters long")
    if not password.strip():
        raise refuse("must not be only spaces")
    if any(not c.isprintable() and c != "\t" for c in password):
        # A NUL or another control character: what a paste or a script slipped in, not a
        # character anyone can type at the login form.
        raise refuse("must not contain control characters")
    return password
