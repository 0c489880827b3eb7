"""Background tasks: ending them (cancel_all) and rounds of work on a schedule (Periodic)."""

from __future__ import annotations

import asyncio
import itertools

import pytest

from llmos._lib.tasks import Periodic, cancel_all


def test_cancel_all_ends_the_tasks_and_raises_the_error_one_ended_with() -> None:
    async def main() -> None:
        async def forever() -> None:
            await asyncio.sleep(3600)

        async def broken() -> None:
            raise ValueError("broken")

        waiting, failed = asyncio.create_task(forever()), asyncio.create_task(broken())
        await asyncio.sleep(0)
        with pytest.raises(ValueError, match="broken"):
            await cancel_all([waiting, failed])
        assert waiting.cancelled()
        await cancel_all([])

    asyncio.run(main())


def test_cancel_all_lets_the_callers_own_cancellation_through() -> None:
    """A timeout around it ends the wait for a task that will not end, and says so."""

    async def main() -> None:
        stop = asyncio.Event()

        async def stubborn() -> None:
            while not stop.is_set():
                try:
                    await stop.wait()
                except asyncio.CancelledError:
                    continue  # refuses to end

        task = asyncio.create_task(stubborn())
        await asyncio.sleep(0)
        with pytest.raises(TimeoutError):
            async with asyncio.timeout(0.2):
                await cancel_all([task])
        stop.set()
        await task

    asyncio.run(main())


def test_periodic_rounds_keep_their_schedule_and_survive_a_failing_round() -> None:
    async def main() -> list[float]:
        loop = asyncio.get_running_loop()
        started: list[float] = []
        done = asyncio.Event()

        async def work() -> None:
            started.append(loop.time())
            if len(started) == 2:
                raise RuntimeError("a bad round")
            await asyncio.sleep(0.2)  # as long as its interval
            if len(started) == 5:
                done.set()

        rounds = Periodic(work, 0.2, "test rounds", now=True)
        await rounds.start()
        await asyncio.wait_for(done.wait(), 5)
        await rounds.stop()
        await rounds.stop()  # twice is fine
        return [b - a for a, b in itertools.pairwise(started[:5])]

    gaps = asyncio.run(main())
    # Each round starts as the one before ends (0.2 s apart, the failed one sooner), not
    # a whole interval after its end (0.4 s apart).
    assert len(gaps) == 4
    assert sum(gaps) / len(gaps) < 0.3, gaps
