"""The exceptions of ``llmos.preflight``: one root, so callers can catch them all.

Raised for problems with the preflight run itself (bad options, a listener
that cannot start). A node that does not meet the requirements is not an
exception: it is a report whose ``failures`` list is not empty.
"""

from __future__ import annotations

__all__ = ["PreflightError", "PreflightUsageError"]


class PreflightError(Exception):
    """Root of every error raised by ``llmos.preflight``."""


class PreflightUsageError(PreflightError):
    """The options contradict each other or name something that does not exist.

    The CLI maps it to exit code 2.
    """
