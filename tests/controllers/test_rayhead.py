"""rayhead's Jobs API warm-up: what it asks a node's dashboard agent, once per head process,
and when the cluster may say it is Ready."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import pytest
from aiohttp import web

from llmos.controllers import rayhead
from llmos.controllers.rayhead import JobsWarmUp, warm_jobs_api

Seen = list[tuple[str, str | None]]


@asynccontextmanager
async def agent(seen: Seen) -> AsyncIterator[int]:
    """A stand-in dashboard agent on a free port that knows no job."""

    async def logs(request: web.Request) -> web.Response:
        seen.append((request.path, request.headers.get("Authorization")))
        return web.Response(status=404, text="Job llmos-warm-up does not exist")

    app = web.Application()
    app.router.add_get("/api/job_agent/jobs/{job}/logs", logs)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        yield site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    finally:
        await runner.cleanup()


def closed_port() -> int:
    with socket.socket() as sock:  # a port nothing listens on
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def test_the_warm_up_asks_the_agent_for_a_job_that_does_not_exist() -> None:
    seen: Seen = []

    async def body() -> None:
        async with agent(seen) as port:
            assert await warm_jobs_api(port, "secret")  # a 404 is an answer

    asyncio.run(body())
    assert seen == [("/api/job_agent/jobs/llmos-warm-up/logs", "Bearer secret")]


def test_an_agent_that_does_not_answer_is_not_an_error() -> None:
    assert asyncio.run(warm_jobs_api(closed_port(), "secret", timeout=5)) is False


def test_each_head_process_is_warmed_once_and_a_failed_warm_up_again() -> None:
    seen: Seen = []
    woken: list[str] = []
    done: list[bool] = []

    async def settled(warmup: JobsWarmUp) -> None:
        while warmup._tasks:
            await asyncio.sleep(0.01)

    async def body() -> None:
        warmup = JobsWarmUp(woken.append)
        warmup.start("head", 100, closed_port(), "t")  # nothing answers
        await settled(warmup)
        done.append(warmup.done("head", 100))
        async with agent(seen) as port:
            try:
                for pid in (100, 100, 100, 101):  # tried again, then once per process
                    warmup.start("head", pid, port, "t")
                    await settled(warmup)
                    done.append(warmup.done("head", pid))
            finally:
                await warmup.close()
        done.append(warmup.done("head", 100))  # an earlier process's answer no longer counts
        warmup.forget("head")
        done.append(warmup.done("head", 101))

    asyncio.run(body())
    assert len(seen) == 2  # pid 100 once it answered, pid 101 once
    # The cluster is Ready only once its head's Jobs API answered; each answer wakes it.
    assert done == [False, True, True, True, True, False, False]
    assert woken == ["head", "head"]


def test_a_warm_up_that_raises_is_tried_again(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[int] = []

    async def flaky(agent_port: int, token: str) -> bool:
        calls.append(agent_port)
        if len(calls) == 1:
            raise ConnectionResetError("reset by peer")  # none of those it expects
        return True

    monkeypatch.setattr(rayhead, "warm_jobs_api", flaky)

    async def body() -> list[bool]:
        warmup, done = JobsWarmUp(), []
        for _ in range(2):
            warmup.start("head", 100, 1, "t")
            while warmup._tasks:
                await asyncio.sleep(0.01)
            done.append(warmup.done("head", 100))
        return done

    assert asyncio.run(body()) == [False, True]
    assert len(calls) == 2
