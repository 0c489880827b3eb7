"""`PreflightReport`: the results of one run, its verdict and its JSON form.

Returned by `llmos.preflight.run_preflight`; ``llmos server`` and ``llmos
install`` refuse to start when ``report.failures`` is not empty.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from llmos.preflight.result import CheckResult, Status

__all__ = ["API_VERSION", "KIND", "PreflightReport"]

API_VERSION = "preflight.llmos.ai/v1"
KIND = "PreflightReport"


@dataclass(frozen=True)
class PreflightReport:
    """Every check's result, in order, with the run's settings."""

    results: tuple[CheckResult, ...]
    mode: str
    role: str
    hostname: str
    root: str
    data_dir: str
    duration_seconds: float

    def _with(self, status: Status) -> list[CheckResult]:
        return [r for r in self.results if r.status is status]

    @property
    def failures(self) -> list[CheckResult]:
        """Results that failed; any of them makes the node unfit."""
        return self._with(Status.FAIL)

    @property
    def warnings(self) -> list[CheckResult]:
        return self._with(Status.WARN)

    @property
    def skipped(self) -> list[CheckResult]:
        return self._with(Status.SKIP)

    @property
    def ok(self) -> bool:
        """True when nothing failed (warnings are fine)."""
        return not self.failures

    @property
    def verdict(self) -> Status:
        """FAIL if anything failed, else WARN if anything warned, else PASS."""
        if self.failures:
            return Status.FAIL
        return Status.WARN if self.warnings else Status.PASS

    @property
    def exit_code(self) -> int:
        """0 when nothing failed, 1 otherwise (2, a usage error, never comes from a report)."""
        return 0 if self.ok else 1

    def result(self, check_id: str) -> CheckResult:
        """The result of the check ``check_id``; KeyError if it did not run."""
        for result in self.results:
            if result.id == check_id:
                return result
        raise KeyError(check_id)

    def to_dict(self) -> dict[str, Any]:
        """The stable JSON form documented in docs/preflight.md."""
        counts = {status.value: len(self._with(status)) for status in Status}
        return {
            "apiVersion": API_VERSION,
            "kind": KIND,
            "mode": self.mode,
            "role": self.role,
            "hostname": self.hostname,
            "root": self.root,
            "dataDir": self.data_dir,
            "durationSeconds": round(self.duration_seconds, 3),
            "summary": {"verdict": self.verdict.value, **counts},
            "results": [r.to_dict() for r in self.results],
        }
