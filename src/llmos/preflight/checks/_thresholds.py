"""Shared rule for hardware minimums: below minimum fails, below recommended warns."""

from __future__ import annotations

from llmos.preflight.result import Status

__all__ = ["GB", "judge"]

GB = 1_000_000_000
"""Decimal gigabyte. Sizes on the requirements page are GB; MemTotal of a "16 GB" machine
is a little under 16 GiB because the kernel reserves some, but above 16 * 10^9 bytes."""


def judge(value: float, minimum: float, recommended: float) -> Status:
    """FAIL below ``minimum``, WARN below ``recommended``, else PASS."""
    if value < minimum:
        return Status.FAIL
    if value < recommended:
        return Status.WARN
    return Status.PASS
