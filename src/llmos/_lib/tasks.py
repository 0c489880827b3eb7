"""Background asyncio tasks: ending a group of them, and work done every so often."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

_log = logging.getLogger(__name__)


async def cancel_all(tasks: Iterable[asyncio.Task[Any]]) -> None:
    """Cancel ``tasks`` and wait until each has ended (their cancellation is not raised)."""
    pending = list(tasks)
    for task in pending:
        task.cancel()
    for task in pending:
        with contextlib.suppress(asyncio.CancelledError):
            await task


class Periodic:
    """Runs ``work`` every ``interval`` seconds in a task of its own, from :meth:`start`
    until :meth:`stop` (which may be followed by another start). ``now``: a first round
    at once, else after one interval. A round that fails is logged, and the next one
    comes on time."""

    def __init__(
        self,
        work: Callable[[], Awaitable[object]],
        interval: float,
        name: str,
        *,
        now: bool = False,
        log: logging.Logger = _log,
    ) -> None:
        self.work = work
        self.interval = interval
        self.name = name
        self.now = now
        self.log = log
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name=self.name)

    async def stop(self) -> None:
        if self._task is not None:
            await cancel_all([self._task])
            self._task = None

    async def _run(self) -> None:
        if not self.now:
            await asyncio.sleep(self.interval)
        while True:
            try:
                await self.work()
            except Exception:
                self.log.exception("%s failed; trying again in %.0f s", self.name, self.interval)
            await asyncio.sleep(self.interval)
