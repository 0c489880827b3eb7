"""A replica becomes Ready on its health check, with its port, env and logs in place."""

from __future__ import annotations

import asyncio
import contextlib
import socket
from pathlib import Path

import httpx
import pytest

from llmos.runtime.base import Phase
from llmos.runtime.local import LocalRuntime

from .helpers import Recorder, app_spec, run, status_where, until, write_app

pytestmark = pytest.mark.usefixtures("event_loop_kind")

KEY = "modelservices/default/demo/0"


def test_ready_with_port_env_and_logs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LLMOS_TEST_SECRET", "must-not-leak")
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "7")
    spec = app_spec(
        write_app(tmp_path), env=(("GREETING", "hello-{port}"), ("CUDA_VISIBLE_DEVICES", "0"))
    )
    recorder = Recorder()

    async def body(runtime: LocalRuntime) -> None:
        runtime.on_status(recorder)
        first = await runtime.ensure(spec)
        assert first.phase is Phase.STARTING and first.pid and first.port
        ready = await until(status_where(runtime, KEY, lambda s: s.ready), "Ready")
        assert ready.phase is Phase.READY and ready.port == first.port
        port = ready.port
        assert runtime.keys() == [KEY] and runtime.keys("notebooks/") == []

        async with httpx.AsyncClient(trust_env=False) as client:
            env = (await client.get(f"http://127.0.0.1:{port}/env")).json()
        assert env["PORT"] == str(port)
        assert env["GREETING"] == f"hello-{port}"
        assert env["CUDA_VISIBLE_DEVICES"] == "0"  # from the spec, not the server's
        assert env["PYTHONUNBUFFERED"] == "1"
        assert "LLMOS_TEST_SECRET" not in env

        greeting = f"listening on {port} greeting=hello-{port}"
        log_file = tmp_path / "logs" / "modelservices_default_demo_0.log"
        assert greeting in log_file.read_text()
        assert [line async for line in runtime.logs(KEY, tail=1)] == [greeting]
        assert [line async for line in runtime.logs(KEY)] == [greeting]

        follower = runtime.logs(KEY, follow=True, tail=1)
        try:
            assert await anext(follower) == greeting  # now subscribed
            async with httpx.AsyncClient(trust_env=False) as client:
                await client.get(f"http://127.0.0.1:{port}/say/streamed-line")
            assert await asyncio.wait_for(anext(follower), 10) == "streamed-line"
        finally:
            await follower.aclose()

    run(tmp_path, body)
    phases = recorder.phases(KEY)
    assert phases[:2] == [Phase.STARTING, Phase.READY]
    assert phases[-1] is Phase.STOPPED
    assert all(seen.spec == spec for seen in recorder.seen)


def test_follow_ends_when_the_replica_is_removed(tmp_path: Path) -> None:
    spec = app_spec(write_app(tmp_path))

    async def body(runtime: LocalRuntime) -> list[str]:
        await runtime.ensure(spec)
        await until(status_where(runtime, KEY, lambda s: s.ready), "Ready")
        lines: list[str] = []

        async def collect() -> None:
            async for line in runtime.logs(KEY, follow=True):
                lines.append(line)

        task = asyncio.create_task(collect())
        await until(lambda: lines, "the backlog line")
        await runtime.remove(KEY)
        await asyncio.wait_for(task, 10)
        # After removal the file is still readable, without following.
        after = [line async for line in runtime.logs(KEY, follow=True)]
        assert after == lines
        return lines

    assert run(tmp_path, body)[0].startswith("listening on ")


def test_logs_of_an_unknown_key_is_an_error(tmp_path: Path) -> None:
    async def body(runtime: LocalRuntime) -> None:
        from llmos.runtime.local import LocalRuntimeError

        with pytest.raises(LocalRuntimeError, match="no replica 'nope/0'"):
            async with contextlib.aclosing(runtime.logs("nope/0")) as lines:
                async for _ in lines:
                    pass

    run(tmp_path, body)


def test_a_port_the_caller_reserved_is_used_and_probed(tmp_path: Path) -> None:
    with socket.socket() as sock:  # a free port, not from the runtime's pool
        sock.bind(("127.0.0.1", 0))
        reserved = sock.getsockname()[1]
    spec = app_spec(write_app(tmp_path), port=reserved)

    async def body(runtime: LocalRuntime) -> None:
        first = await runtime.ensure(spec)
        assert first.port == reserved
        ready = await until(status_where(runtime, KEY, lambda s: s.ready), "Ready")
        assert ready.port == reserved
        async with httpx.AsyncClient(trust_env=False) as client:
            env = (await client.get(f"http://127.0.0.1:{reserved}/env")).json()
        assert env["PORT"] == str(reserved)

    run(tmp_path, body)
