"""LeaderElector on an in-memory lock: one leader, renewal, loss, graceful hand-over."""

from __future__ import annotations

import asyncio

import pytest

from llmos.controllers.leader import LeaderElector


class MemoryLock:
    """A lock held until released or not renewed for its lease (the loop's clock)."""

    def __init__(self) -> None:
        self.holder = ""
        self.renewed = 0.0
        self.lease = 0.0
        self.broken = False  # True: every call fails, as if the API server were away

    async def acquire_or_renew(self, identity: str, lease_seconds: float) -> bool:
        if self.broken:
            raise OSError("unreachable")
        now = asyncio.get_running_loop().time()
        if self.holder and self.holder != identity and now < self.renewed + self.lease:
            return False
        self.holder, self.renewed, self.lease = identity, now, lease_seconds
        return True

    async def release(self, identity: str) -> None:
        if self.holder == identity:
            self.holder = ""


def elector(lock: MemoryLock, name: str, log: list[str]) -> LeaderElector:
    async def started() -> None:
        log.append(f"{name} started")

    async def stopped() -> None:
        log.append(f"{name} stopped")

    return LeaderElector(
        lock,
        name,
        on_started=started,
        on_stopped=stopped,
        lease_seconds=0.5,
        renew_deadline=0.3,
        retry_seconds=0.05,
    )


def test_one_leader_and_a_graceful_hand_over() -> None:
    async def main() -> list[str]:
        lock, log = MemoryLock(), []
        a, b = elector(lock, "a", log), elector(lock, "b", log)
        await a.start()
        await asyncio.sleep(0.1)
        await b.start()
        await asyncio.sleep(0.3)
        assert (a.leading, b.leading) == (True, False)
        await a.stop()  # releases: b need not wait out the lease
        await asyncio.sleep(0.2)
        assert b.leading
        await b.stop()
        return log

    assert asyncio.run(main()) == ["a started", "a stopped", "b started", "b stopped"]


def test_a_leader_that_cannot_renew_stops_and_is_lost() -> None:
    async def main() -> None:
        lock, log = MemoryLock(), []
        a = elector(lock, "a", log)
        await a.start()
        await asyncio.sleep(0.1)
        assert a.leading
        lock.broken = True
        await asyncio.wait_for(a.lost.wait(), 2)
        assert not a.leading and log == ["a started", "a stopped"]
        await a.stop()

    asyncio.run(main())


def test_timings_must_nest() -> None:
    async def noop() -> None:
        return None

    with pytest.raises(ValueError):
        LeaderElector(
            MemoryLock(), "x", on_started=noop, on_stopped=noop, lease_seconds=5, renew_deadline=6
        )
