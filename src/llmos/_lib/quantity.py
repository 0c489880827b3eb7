"""Kubernetes-style quantities: ``500m`` CPUs, ``16Gi`` of memory."""

from __future__ import annotations

import math
import re
from decimal import Decimal, InvalidOperation

_SUFFIXES: dict[str, Decimal] = {
    "": Decimal(1),
    "m": Decimal("0.001"),
    "k": Decimal(10) ** 3,
    "M": Decimal(10) ** 6,
    "G": Decimal(10) ** 9,
    "T": Decimal(10) ** 12,
    "P": Decimal(10) ** 15,
    "Ki": Decimal(2) ** 10,
    "Mi": Decimal(2) ** 20,
    "Gi": Decimal(2) ** 30,
    "Ti": Decimal(2) ** 40,
    "Pi": Decimal(2) ** 50,
}
_QUANTITY = re.compile(r"^([0-9]+(?:\.[0-9]+)?)(m|k|M|G|T|P|Ki|Mi|Gi|Ti|Pi)?$")


MAX_INT64 = 2**63 - 1  # the largest resourceVersion, timeout or count a store keeps


def is_whole_number(text: str) -> bool:
    """Whether ``text`` is ASCII digits only: ``"³".isdigit()`` is true, but ``int("³")`` fails."""
    return text.isascii() and text.isdigit()


def is_int64(text: str) -> bool:
    """Whether ``text`` is a whole number a store keeps: ASCII digits, at most ``MAX_INT64``."""
    return is_whole_number(text) and int(text) <= MAX_INT64


def parse_quantity(text: str | int | float) -> Decimal:
    """Parse ``text`` into a number; raise ValueError naming the accepted forms."""
    if isinstance(text, int | float):
        if isinstance(text, float) and not math.isfinite(text):
            raise ValueError(f"quantity {text!r} is not a finite number")
        if text < 0:
            raise ValueError(f"quantity {text!r} must not be negative")
        return Decimal(str(text))
    match = _QUANTITY.match(text.strip())
    if not match:
        raise ValueError(
            f"{text!r} is not a quantity: use a number with an optional suffix, "
            "like 2, 500m, 512Mi or 16Gi"
        )
    try:
        number = Decimal(match.group(1))
    except InvalidOperation as exc:  # pragma: no cover - the regex guards this
        raise ValueError(f"{text!r} is not a number") from exc
    return number * _SUFFIXES[match.group(2) or ""]


def gib(count: int) -> str:
    """Bytes for people: ``24 GiB``, ``39.6 GiB``, ``512 MiB``."""
    if count >= 2**30:
        value = count / 2**30
        return f"{value:.0f} GiB" if abs(value - round(value)) < 0.05 else f"{value:.1f} GiB"
    return f"{count / 2**20:.0f} MiB"


def format_bytes(count: int) -> str:
    """Format a byte count the way a quantity is written: ``15Gi``, ``512Mi``."""
    for suffix in ("Ti", "Gi", "Mi", "Ki"):
        unit = int(_SUFFIXES[suffix])
        if count >= unit and count % unit == 0:
            return f"{count // unit}{suffix}"
    for suffix in ("Ti", "Gi", "Mi", "Ki"):
        unit = int(_SUFFIXES[suffix])
        if count >= unit:
            return f"{count // unit}{suffix}"
    return str(count)
