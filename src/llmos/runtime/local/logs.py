"""One replica's output: a rotated log file, recent lines in memory, live followers.

The supervisor feeds a :class:`LogBook` from the process's merged
stdout/stderr pipe (:meth:`LogBook.pump`); ``LocalRuntime.logs()`` reads it
back. A book belongs to a replica key, not to one process, so it spans
restarts and spec changes and is closed only when the replica is removed.

Files live at ``<log_dir>/<log_file_name(key)>`` and are appended to across
server restarts, until the replica's owner is deleted (``LocalRuntime.forget_logs``,
:mod:`~llmos.runtime.local.logfiles`). They rotate when they would pass
``Timing.log_max_bytes`` (``.log.1`` is the newest old file), at a write
boundary, which may split a line. Writes are small unbuffered appends made on the event loop, like the
``logging`` module's own file handlers.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import os
import re
from collections import deque
from collections.abc import AsyncGenerator
from pathlib import Path

from llmos.runtime.local.timing import Timing

__all__ = ["LogBook", "escape_key", "log_file_name"]

log = logging.getLogger(__name__)

_CHUNK = 64 * 1024
_MAX_LINE = 64 * 1024  # a longer run without a newline is cut into lines this long
_UNSAFE = re.compile(r"[^A-Za-z0-9.\-/]")
SHORTENED_PAST = 200  # a longer name keeps its first SHORTENED_KEEPS characters and a digest
SHORTENED_KEEPS = 180
_BEHIND = "[llmos] this reader fell too far behind and was cut off; run the command again"


def log_file_name(key: str) -> str:
    """A file name for ``key``: ``/`` becomes ``_``, other odd characters ``%XX``.

    ``modelservices/default/demo/0`` becomes ``modelservices_default_demo_0.log``.
    The mapping is one-to-one, since a literal ``_`` is escaped too.
    """
    name = escape_key(key)
    if len(name) > SHORTENED_PAST:  # file names stop at 255 bytes; keep it unique with a digest
        name = name[:SHORTENED_KEEPS] + "~" + hashlib.sha256(key.encode()).hexdigest()[:16]
    return name + ".log"


def escape_key(key: str) -> str:
    """``key`` (or a prefix of one) as file names write it, before any shortening.

    Each character is escaped on its own, so ``key.startswith(prefix)`` exactly when
    ``escape_key(key).startswith(escape_key(prefix))``. ``~`` is always escaped: it
    marks a shortened name.
    """
    escaped = _UNSAFE.sub(lambda m: "".join(f"%{b:02X}" for b in m.group().encode()), key)
    return escaped.replace("/", "_")


def _decode(raw: bytes) -> str:
    return raw.decode("utf-8", "replace").removesuffix("\r")


class LogBook:
    """The output of one replica, across its restarts."""

    def __init__(self, path: Path, timing: Timing) -> None:
        self.path = path
        self._timing = timing
        self._recent: deque[str] = deque(maxlen=timing.memory_lines)
        self.count = 0  # lines published so far: a mark for ``last(since=...)``
        self._partial = b""
        self._followers: set[asyncio.Queue[str | None]] = set()
        self._fd: int | None = None
        self._size = 0
        self._closed = False
        self._write_failed = False

    # -- feeding -------------------------------------------------------------

    async def pump(self, stream: asyncio.StreamReader) -> None:
        """Copy ``stream`` into the book until it ends (or the caller cancels)."""
        try:
            while chunk := await stream.read(_CHUNK):
                self.write(chunk)
        finally:
            self.end_line()

    def write(self, data: bytes) -> None:
        """Append raw output: to the file as is, and line by line to memory and followers."""
        if self._closed or not data:
            return
        self._append_to_file(data)
        *complete, self._partial = (self._partial + data).split(b"\n")
        for raw in complete:
            for start in range(0, max(len(raw), 1), _MAX_LINE):
                self._publish(_decode(raw[start : start + _MAX_LINE]))
        while len(self._partial) > _MAX_LINE:
            self._publish(_decode(self._partial[:_MAX_LINE]))
            self._partial = self._partial[_MAX_LINE:]

    def end_line(self) -> None:
        """Publish a last line that has no newline (the process ended mid-line)."""
        if self._partial:
            self._publish(_decode(self._partial))
            self._partial = b""

    def _publish(self, line: str) -> None:
        self._recent.append(line)
        self.count += 1
        for queue in list(self._followers):
            if queue.qsize() >= self._timing.follow_queue_lines:
                self._followers.discard(queue)
                queue.put_nowait(_BEHIND)
                queue.put_nowait(None)
            else:
                queue.put_nowait(line)

    def _append_to_file(self, data: bytes) -> None:
        try:
            if (
                self._fd is not None
                and self._size
                and self._size + len(data) > self._timing.log_max_bytes
            ):
                self._rotate()
            if self._fd is None:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o640)
                self._size = os.fstat(self._fd).st_size
            os.write(self._fd, data)
            self._size += len(data)
            self._write_failed = False
        except OSError as exc:
            if not self._write_failed:  # say it once per failing stretch, not per chunk
                log.warning("cannot write log file %s: %s", self.path, exc)
            self._write_failed = True

    def _rotate(self) -> None:
        self._close_file()
        backups = self._timing.log_backups
        name = str(self.path)
        for n in range(backups - 1, 0, -1):
            if os.path.exists(f"{name}.{n}"):
                os.replace(f"{name}.{n}", f"{name}.{n + 1}")
        if backups > 0:
            os.replace(name, f"{name}.1")
        else:
            os.unlink(name)

    def _close_file(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
            self._size = 0

    def close(self) -> None:
        """End every follower and close the file; later output is dropped."""
        self.end_line()
        self._closed = True
        for queue in self._followers:
            queue.put_nowait(None)
        self._followers.clear()
        self._close_file()

    # -- reading -------------------------------------------------------------

    def last(self, n: int, *, since: int = 0) -> tuple[str, ...]:
        """The last ``n`` lines kept in memory, of those published after mark ``since``."""
        n = min(n, self.count - since, len(self._recent))
        return tuple(self._recent)[-n:] if n > 0 else ()

    async def lines(self, tail: int | None, follow: bool) -> AsyncGenerator[str, None]:
        """Lines from the current file (the last ``tail``, or all), then new ones if ``follow``."""
        follow = follow and not self._closed
        backlog = read_lines(self.path, tail, drop_partial=follow and bool(self._partial))
        if not follow:
            for line in backlog:
                yield line
            return
        # Subscribed in the same step as the file read: no line is missed or repeated.
        queue: asyncio.Queue[str | None] = asyncio.Queue()
        self._followers.add(queue)
        try:
            for line in backlog:
                yield line
            while (line_or_end := await queue.get()) is not None:
                yield line_or_end
        finally:
            self._followers.discard(queue)


def read_lines(path: Path, tail: int | None, *, drop_partial: bool = False) -> list[str]:
    """The lines of the log file ``path`` (the last ``tail`` of them); [] if it does not exist."""
    if tail is not None and tail <= 0:
        return []
    try:
        file = path.open("rb")
    except FileNotFoundError:
        return []
    with file:
        if tail is None:
            data = file.read()
        else:
            pos = file.seek(0, os.SEEK_END)
            data = b""
            while pos > 0 and data.count(b"\n") <= tail:
                step = min(_CHUNK, pos)
                pos -= step
                file.seek(pos)
                data = file.read(step) + data
    pieces = data.split(b"\n")
    last = pieces.pop()  # "" when the file ends with a newline, else a line still being written
    if last and not drop_partial:
        pieces.append(last)
    lines = [_decode(raw) for raw in pieces]
    return lines if tail is None else lines[-tail:]
