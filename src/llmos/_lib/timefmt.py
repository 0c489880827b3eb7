"""RFC 3339 timestamps, as Kubernetes writes them (UTC, second precision)."""

from __future__ import annotations

import time
from datetime import UTC, datetime


def now() -> datetime:
    return datetime.now(UTC)


def rfc3339(moment: datetime | None = None) -> str:
    """Format ``moment`` (default: now) as ``2026-01-02T03:04:05Z``."""
    return (moment or now()).astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_rfc3339(text: str) -> datetime:
    """Parse a timestamp written by :func:`rfc3339` (or any ISO 8601 form)."""
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def seconds_or_none(text: object) -> float | None:
    """Seconds since the epoch of a timestamp users may have written; None if unreadable.

    For status fields the controllers keep but users with write access to an object
    could set: a value that does not parse is as good as none, never an error.
    """
    if not isinstance(text, str) or not text:
        return None
    try:
        return parse_rfc3339(text).timestamp()
    except (ValueError, OverflowError):
        return None


def seconds_until(text: object) -> float:
    """Seconds from now to an expiry users may have written; 0 if it does not read (an
    expiry that cannot be read is taken as passed)."""
    at = seconds_or_none(text)
    return 0.0 if at is None else at - time.time()
