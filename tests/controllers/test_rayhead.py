"""rayhead.warm_jobs_api: what it asks a node's dashboard agent, and that it never raises."""

from __future__ import annotations

import asyncio
import socket

from aiohttp import web

from llmos.controllers.rayhead import JobsWarmUp, warm_jobs_api


def test_the_warm_up_asks_the_agent_for_a_job_that_does_not_exist() -> None:
    seen: list[tuple[str, str | None]] = []

    async def logs(request: web.Request) -> web.Response:
        seen.append((request.path, request.headers.get("Authorization")))
        return web.Response(status=404, text="Job llmos-warm-up does not exist")

    async def body() -> None:
        app = web.Application()
        app.router.add_get("/api/job_agent/jobs/{job}/logs", logs)
        runner = web.AppRunner(app)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        try:
            assert await warm_jobs_api(port, "secret")  # a 404 is an answer
        finally:
            await runner.cleanup()

    asyncio.run(body())
    assert seen == [("/api/job_agent/jobs/llmos-warm-up/logs", "Bearer secret")]


def test_an_agent_that_does_not_answer_is_not_an_error() -> None:
    with socket.socket() as sock:  # a port nothing listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    assert asyncio.run(warm_jobs_api(port, "secret", timeout=5)) is False


def test_each_head_process_is_warmed_once_and_a_failed_warm_up_again() -> None:
    seen: list[str] = []

    async def logs(request: web.Request) -> web.Response:
        seen.append(request.path)
        return web.Response(status=404)

    async def settled(warmup: JobsWarmUp) -> None:
        while warmup._tasks:
            await asyncio.sleep(0.01)

    async def body() -> None:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            closed = sock.getsockname()[1]
        warmup = JobsWarmUp()
        warmup.start("head", 100, closed, "t")  # nothing answers
        await settled(warmup)
        app = web.Application()
        app.router.add_get("/api/job_agent/jobs/{job}/logs", logs)
        runner = web.AppRunner(app)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        try:
            for pid in (100, 100, 100, 101):  # tried again, then once per process
                warmup.start("head", pid, port, "t")
                await settled(warmup)
        finally:
            await warmup.close()
            await runner.cleanup()

    asyncio.run(body())
    assert len(seen) == 2  # pid 100 once it answered, pid 101 once
