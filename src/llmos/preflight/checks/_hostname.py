"""The node's hostname, read from the host view so fixture trees can set it."""

from __future__ import annotations

import socket

from llmos.preflight.host import HostFiles

__all__ = ["hostname"]


def hostname(host: HostFiles) -> str:
    """``/proc/sys/kernel/hostname``, else ``socket.gethostname()``."""
    text = host.read_text("/proc/sys/kernel/hostname")
    return text.strip() if text and text.strip() else socket.gethostname()
