"""The root error of ``llmos.gpu``."""

from __future__ import annotations

from llmos._lib.errors import LLMOSError


class GPUError(LLMOSError):
    """A GPU source, request or scheduling problem; the message says what to change."""
