"""The HTTP health probe: one HTTP/1.0 GET on 127.0.0.1, 2xx means healthy.

Called by the supervisor every probe period. It speaks just enough HTTP/1.0
over an asyncio stream to read a status line: no client library, no pool, no
proxies from the environment, and nothing in flight between probes.
"""

from __future__ import annotations

import asyncio
import contextlib

from llmos.runtime.local.ports import LOOPBACK

__all__ = ["probe"]


async def probe(port: int, path: str, timeout: float) -> bool:
    """Whether ``GET http://127.0.0.1:{port}{path}`` answers 2xx within ``timeout`` seconds."""
    try:
        async with asyncio.timeout(timeout):
            return await _get_status(port, path) // 100 == 2
    except (OSError, TimeoutError, ValueError, asyncio.IncompleteReadError):
        return False


async def _get_status(port: int, path: str) -> int:
    reader, writer = await asyncio.open_connection(LOOPBACK, port)
    try:
        request = f"GET {path or '/'} HTTP/1.0\r\nHost: {LOOPBACK}:{port}\r\nUser-Agent: llmos-probe\r\n\r\n"
        writer.write(request.encode("latin-1"))
        await writer.drain()
        status_line = await reader.readline()  # b"HTTP/1.1 200 OK\r\n"
        parts = status_line.split(None, 2)
        if len(parts) < 2 or not parts[0].startswith(b"HTTP/"):
            raise ValueError(f"not an HTTP response: {status_line[:80]!r}")
        return int(parts[1])
    finally:
        writer.close()
        with contextlib.suppress(OSError):
            await writer.wait_closed()
