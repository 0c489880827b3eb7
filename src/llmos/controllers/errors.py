"""How a reconciler says what went wrong: the type carries the meaning (as in kopf)."""

from __future__ import annotations

from llmos._lib.errors import LLMOSError


class ControllerError(LLMOSError):
    """Root of controller errors."""


class TemporaryError(ControllerError):
    """Retry after ``retry_after`` seconds (or the queue's backoff when None)."""


class PermanentError(ControllerError):
    """Do not retry until the object changes; the message goes to status."""
