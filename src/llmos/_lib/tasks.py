"""Background asyncio tasks: ending a group of them, and work done every so often."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

_log = logging.getLogger(__name__)


async def cancel_all(tasks: Iterable[asyncio.Task[Any]]) -> None:
    """Cancel ``tasks`` and wait until each has ended. Their cancellation is not raised, the
    first other error one of them ended with is; the caller's own cancellation (a timeout
    around the call, say) is raised as it comes."""
    pending = list(tasks)
    for task in pending:
        task.cancel()
    if pending:
        await asyncio.wait(pending)
    for task in pending:
        if not task.cancelled() and (error := task.exception()) is not None:
            raise error


class Periodic:
    """Runs ``work`` every ``interval`` seconds in a task of its own, from :meth:`start`
    until :meth:`stop` (which may be followed by another start). ``now``: a first round
    at once, else after one interval. Rounds start ``interval`` apart (a round that takes
    longer delays the next, never two at once). A round that fails is logged, and the
    next one comes on time."""

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
        loop = asyncio.get_running_loop()
        due = loop.time() + (0.0 if self.now else self.interval)
        while True:
            await asyncio.sleep(max(0.0, due - loop.time()))
            try:
                await self.work()
            except Exception:
                self.log.exception("%s failed; trying again in %g s", self.name, self.interval)
            due = max(due + self.interval, loop.time())
