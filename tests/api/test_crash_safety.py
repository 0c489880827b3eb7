"""kill -9 during 500 concurrent writes: every acknowledged write survives, the DB is sound."""

from __future__ import annotations

import asyncio
import os
import signal
import sqlite3

import httpx
import pytest

from factories import modelservice, ms_path
from server import ADMIN_PASSWORD, RunningServer

WRITES = 500
KILL_AFTER = 150


async def _write_until_killed(server: RunningServer, token: str) -> tuple[set[str], int]:
    acked: set[str] = set()
    failed = 0
    killed = asyncio.Event()
    limits = httpx.Limits(max_connections=64)
    async with httpx.AsyncClient(
        base_url=server.url,
        verify=server.ssl_context(),
        headers={"Authorization": f"Bearer {token}"},
        limits=limits,
        timeout=30,
    ) as client:

        async def write(index: int) -> None:
            nonlocal failed
            name = f"crash-{index:04d}"
            try:
                response = await client.post(ms_path("default"), json=modelservice(name))
            except httpx.HTTPError:
                failed += 1
                return
            if response.status_code == 201:
                acked.add(name)
                if len(acked) >= KILL_AFTER and not killed.is_set():
                    killed.set()
                    os.kill(server.pid, signal.SIGKILL)
            else:
                failed += 1

        await asyncio.gather(*(write(i) for i in range(WRITES)))
    return acked, failed


@pytest.mark.slow
def test_acknowledged_writes_survive_kill_9(fresh_server: RunningServer) -> None:
    token = fresh_server.setup_admin()
    acked, failed = asyncio.run(_write_until_killed(fresh_server, token))
    assert fresh_server.proc is not None
    assert fresh_server.proc.wait(10) == -signal.SIGKILL
    assert len(acked) >= KILL_AFTER
    assert failed > 0, "the kill should have interrupted some writes"

    db = fresh_server.data_dir / "llmos.db"
    with sqlite3.connect(db) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"

    fresh_server.start()
    token = fresh_server.login("admin", ADMIN_PASSWORD)
    with fresh_server.client(token) as admin:
        items = admin.get(ms_path("default")).json()["items"]
        stored = {item["metadata"]["name"] for item in items}
        missing = acked - stored
        assert not missing, f"{len(missing)} acknowledged writes were lost: {sorted(missing)[:5]}"
        versions = [int(item["metadata"]["resourceVersion"]) for item in items]
        assert len(set(versions)) == len(versions)
        # The store still takes writes after recovery.
        assert admin.post(ms_path("default"), json=modelservice("after-crash")).status_code == 201
    assert fresh_server.stop() == 0
    with sqlite3.connect(db) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
