"""The small NVML chores every caller of nvidia-ml-py repeats.

``llmos.preflight`` (one reading per check run) and ``llmos.gpu`` (the live
inventory behind GPUDevice objects) are siblings that may not import each
other, so what they share lives here: starting NVML and turning its answers
into plain Python values. nvidia-ml-py (``pynvml``) is a declared dependency,
but importing it is deferred so a machine without it still imports LLMOS.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

__all__ = ["NvmlUnavailable", "compute_capability", "session", "shutdown", "start", "text"]


class NvmlUnavailable(Exception):
    """NVML could not be loaded or initialised (no driver, no GPU, no library)."""


def text(value: object) -> str:
    """NVML answers ``bytes`` in older bindings and ``str`` in newer ones."""
    return value.decode() if isinstance(value, bytes) else str(value)


def compute_capability(raw: str) -> tuple[int, int]:
    """``"8.9"`` → ``(8, 9)``; a missing minor is 0."""
    major, _, minor = str(raw).partition(".")
    return int(major), int(minor or 0)


def start() -> Any:
    """Import pynvml and initialise NVML; return the module. Raise NvmlUnavailable if not."""
    try:
        import pynvml
    except ImportError as exc:  # pragma: no cover - a declared dependency
        raise NvmlUnavailable(f"nvidia-ml-py is not installed: {exc}") from exc
    try:
        pynvml.nvmlInit()
    except pynvml.NVMLError as exc:
        raise NvmlUnavailable(str(exc)) from exc
    return pynvml


def shutdown(pynvml: Any) -> None:
    """Release NVML (it counts initialisations, so each ``start`` needs one)."""
    with contextlib.suppress(pynvml.NVMLError):
        pynvml.nvmlShutdown()


@contextlib.contextmanager
def session() -> Iterator[Any]:
    """NVML for the length of a ``with`` block: yields the pynvml module."""
    pynvml = start()
    try:
        yield pynvml
    finally:
        shutdown(pynvml)
