"""The root of every LLMOS error, and the stable reason codes they carry.

Each package derives its own root exception from :class:`LLMOSError`. The API
maps a reason to an HTTP status in exactly one place (``llmos.api.errors``),
so code below the API never thinks in HTTP terms.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum


class Reason(StrEnum):
    """Stable machine-readable reasons, named like Kubernetes' StatusReason."""

    BAD_REQUEST = "BadRequest"
    INVALID = "Invalid"
    NOT_FOUND = "NotFound"
    ALREADY_EXISTS = "AlreadyExists"
    CONFLICT = "Conflict"
    GONE = "Gone"
    UNAUTHORIZED = "Unauthorized"
    FORBIDDEN = "Forbidden"
    METHOD_NOT_ALLOWED = "MethodNotAllowed"
    REQUEST_TOO_LARGE = "RequestEntityTooLarge"
    UNSUPPORTED_MEDIA_TYPE = "UnsupportedMediaType"
    TOO_MANY_REQUESTS = "TooManyRequests"
    SERVICE_UNAVAILABLE = "ServiceUnavailable"
    INTERNAL = "InternalError"


@dataclass(frozen=True)
class Cause:
    """One problem with one field of a request, e.g. ``spec.replicas``."""

    field: str
    message: str
    reason: str = "FieldValueInvalid"


@dataclass
class LLMOSError(Exception):
    """Base class: a plain-language message plus a stable reason."""

    message: str
    reason: Reason = Reason.INTERNAL
    causes: list[Cause] = field(default_factory=list)
    kind: str | None = None
    name: str | None = None
    retry_after: float | None = None

    def __post_init__(self) -> None:
        super().__init__(self.message)

    def __str__(self) -> str:
        return self.message
