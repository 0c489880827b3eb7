"""One check's outcome: `CheckResult`, and its `Status`.

Every check in ``llmos.preflight.checks`` returns one `CheckResult`; the
runner collects them into a `PreflightReport`.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

__all__ = ["CheckResult", "Status"]


class Status(enum.StrEnum):
    """How a check went. Only FAIL makes a report fail."""

    PASS = "pass"
    WARN = "warn"
    FAIL = "fail"
    SKIP = "skip"


@dataclass(frozen=True)
class CheckResult:
    """The outcome of one check, with what a user needs to act on it."""

    id: str
    """Stable identifier, such as ``os`` or ``disk-iops``; documented in docs/preflight.md."""
    title: str
    """Short human name of the check."""
    status: Status
    measured: str | None
    """What the node has, in words ("Ubuntu 22.04", "12 cores"); None when not measured."""
    required: str | None
    """What the requirements page asks for."""
    fix: str | None = None
    """One line a user can act on; None when the check passed."""
    reason: str | None = None
    """Why a check was skipped, or why a failure was downgraded to a warning."""
    data: Mapping[str, Any] = field(default_factory=dict)
    """Check-specific machine-readable values (JSON-safe), documented per check."""

    def downgraded(self, reason: str) -> CheckResult:
        """This result with FAIL turned into WARN, noting ``reason``."""
        if self.status is not Status.FAIL:
            return self
        return replace(self, status=Status.WARN, reason=reason)

    def to_dict(self) -> dict[str, Any]:
        """The JSON form of this result (see docs/preflight.md)."""
        return {
            "id": self.id,
            "title": self.title,
            "status": self.status.value,
            "measured": self.measured,
            "required": self.required,
            "fix": self.fix,
            "reason": self.reason,
            "data": dict(self.data),
        }
