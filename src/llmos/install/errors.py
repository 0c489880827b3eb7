"""The installer's errors: one root, :class:`InstallError`, with a plain-language message."""

from __future__ import annotations

from llmos._lib.errors import LLMOSError

__all__ = ["InstallError", "JoinError", "StepFailed"]


class InstallError(LLMOSError):
    """``llmos install`` or ``llmos uninstall`` cannot go on; the message says why and what to do."""


class JoinError(InstallError):
    """The server this node should join refused it, or cannot be trusted or reached."""


class StepFailed(InstallError):
    """A command of the plan exited with an error; the steps after it did not run."""
