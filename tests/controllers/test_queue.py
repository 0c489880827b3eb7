"""The work queue's client-go guarantees."""

from __future__ import annotations

import asyncio

import pytest

from llmos.controllers.queue import ShutDown, WorkQueue


def run(coro):  # type: ignore[no-untyped-def]
    return asyncio.run(coro)


def test_a_waiting_key_is_queued_once() -> None:
    async def main() -> list[str]:
        queue: WorkQueue[str] = WorkQueue()
        for key in ("a", "b", "a", "a", "b"):
            queue.add(key)
        assert len(queue) == 2
        return [await queue.get(), await queue.get()]

    assert run(main()) == ["a", "b"]


def test_a_key_goes_to_one_worker_at_a_time() -> None:
    async def main() -> list[str]:
        queue: WorkQueue[str] = WorkQueue()
        queue.add("a")
        first = await queue.get()
        queue.add("a")  # changed while being processed
        assert len(queue) == 0, "must not be handed to a second worker"
        queue.done(first)
        assert len(queue) == 1, "comes back once the first worker is done"
        return [first, await queue.get()]

    assert run(main()) == ["a", "a"]


def test_workers_wait_for_keys() -> None:
    async def main() -> str:
        queue: WorkQueue[str] = WorkQueue()
        getter = asyncio.create_task(queue.get())
        await asyncio.sleep(0)
        assert not getter.done()
        queue.add("x")
        return await asyncio.wait_for(getter, 1)

    assert run(main()) == "x"


def test_backoff_grows_is_jittered_and_resets() -> None:
    async def main() -> None:
        queue: WorkQueue[str] = WorkQueue(base_delay=0.01, max_delay=1.0)
        delays = [queue.add_rate_limited("k") for _ in range(12)]
        assert delays[0] == pytest.approx(0.01, rel=0.25)
        assert delays[5] == pytest.approx(0.32, rel=0.25)
        assert max(delays) <= 1.2, "capped"
        assert len({round(d, 6) for d in delays[-3:]}) > 1, "jittered"
        assert queue.failures("k") == 12
        queue.forget("k")
        assert queue.failures("k") == 0
        assert queue.backoff("k") == pytest.approx(0.01, rel=0.25)

    run(main())


def test_rate_limited_keys_come_back_after_the_delay() -> None:
    async def main() -> float:
        queue: WorkQueue[str] = WorkQueue(base_delay=0.05)
        loop = asyncio.get_running_loop()
        start = loop.time()
        queue.add_rate_limited("k")
        assert len(queue) == 0
        await asyncio.wait_for(queue.get(), 2)
        return loop.time() - start

    assert run(main()) >= 0.035


def test_shutdown_releases_waiting_workers() -> None:
    async def main() -> None:
        queue: WorkQueue[str] = WorkQueue()
        getter = asyncio.create_task(queue.get())
        await asyncio.sleep(0)
        await queue.shutdown()
        with pytest.raises(ShutDown):
            await asyncio.wait_for(getter, 1)

    run(main())
