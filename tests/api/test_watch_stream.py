"""A watch's stream when its client leaves: the store's iterator is closed, nothing raised."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import anyio
import pytest

from llmos.api.watch import stream_response
from llmos.resources.registry import Registry
from llmos.store.base import WatchEvent


@pytest.mark.parametrize("timeout", [None, 30.0])
def test_a_client_leaving_closes_the_watch_cleanly(timeout: float | None) -> None:
    async def main() -> None:
        waiting, closed = asyncio.Event(), asyncio.Event()

        async def events() -> AsyncIterator[WatchEvent]:
            try:
                waiting.set()
                await asyncio.Event().wait()  # a quiet collection: no event comes
                yield WatchEvent("ADDED", "", "", "", 1, "{}")  # pragma: no cover
            finally:
                closed.set()
                await asyncio.sleep(0)  # a store's watch cleans up over a few loop turns
                await asyncio.sleep(0)

        info = Registry().by_kind("ModelService")
        assert info is not None
        response = stream_response(info, events(), timeout, bookmarks=False)

        scope = anyio.CancelScope()  # as Starlette runs a streaming body

        async def send() -> None:
            with scope:
                async for _ in response.body_iterator:  # pragma: no cover
                    pass

        reading = asyncio.create_task(send())
        await waiting.wait()
        scope.cancel()  # what the server does when the client goes
        await reading  # not "aclose(): asynchronous generator is already running"
        assert closed.is_set()

    asyncio.run(main())
