"""Leader election: with several server replicas, only one runs the controllers.

In cluster mode every LLMOS server replica serves the API, but reconciling is
the leader's alone. :class:`LeaderElector` campaigns for a :class:`LeaderLock`
(a Kubernetes Lease in cluster mode: ``store.kube.lease``), calls
``on_started`` once it holds it, renews it every ``retry_seconds``, and calls
``on_stopped`` when it could not renew for ``renew_deadline`` seconds or is
stopped. Losing the lock is final for an elector, as in client-go: the
controllers it stopped cannot be restarted, so the owner should exit and be
restarted (``lost`` is set). The timings are client-go's defaults: a lease of
15 s, a renew deadline of 10 s, a try every 2 s; another replica takes over at
most about a lease after the leader dies.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections.abc import Awaitable, Callable
from typing import Protocol

log = logging.getLogger(__name__)

__all__ = ["LeaderElector", "LeaderLock"]


class LeaderLock(Protocol):
    """A lock that at most one identity holds at a time, for a limited time."""

    async def acquire_or_renew(self, identity: str, lease_seconds: float) -> bool:
        """Take the lock (free or expired) or extend our hold; True when we hold it now."""

    async def release(self, identity: str) -> None:
        """Give the lock up at once, if ``identity`` holds it."""


class LeaderElector:
    """Holds ``lock`` for ``identity`` and runs ``on_started`` … ``on_stopped`` meanwhile."""

    def __init__(
        self,
        lock: LeaderLock,
        identity: str,
        *,
        on_started: Callable[[], Awaitable[None]],
        on_stopped: Callable[[], Awaitable[None]],
        lease_seconds: float = 15.0,
        renew_deadline: float = 10.0,
        retry_seconds: float = 2.0,
    ) -> None:
        if not retry_seconds < renew_deadline < lease_seconds:
            raise ValueError("leader election needs retry_seconds < renew_deadline < lease_seconds")
        self.lock = lock
        self.identity = identity
        self._on_started = on_started
        self._on_stopped = on_stopped
        self._lease = lease_seconds
        self._deadline = renew_deadline
        self._retry = retry_seconds
        self.leading = False
        self.lost = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name=f"leader-election-{self.identity}")

    async def stop(self) -> None:
        """Stop campaigning; a leader stops its work and releases the lock for the next."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        if self.leading:
            self.leading = False
            await self._on_stopped()
            with contextlib.suppress(Exception):
                await self.lock.release(self.identity)

    async def _try(self) -> bool:
        try:
            return await self.lock.acquire_or_renew(self.identity, self._lease)
        except Exception as exc:  # the API server may be briefly unreachable: just a failed try
            log.warning("leader election: %s could not reach the lock: %s", self.identity, exc)
            return False

    async def _run(self) -> None:
        while not await self._try():
            await asyncio.sleep(self._retry * random.uniform(1.0, 1.2))
        log.info("leader election: %s is the leader", self.identity)
        self.leading = True
        await self._on_started()
        renewed = asyncio.get_running_loop().time()
        while True:
            await asyncio.sleep(self._retry)
            if await self._try():
                renewed = asyncio.get_running_loop().time()
            elif asyncio.get_running_loop().time() - renewed > self._deadline:
                break
        log.error("leader election: %s lost the lease; stopping the controllers", self.identity)
        self.leading = False
        await self._on_stopped()
        self.lost.set()
