"""kill -9 of the server: no engine outlives it, and the model is served again after restart,
with its logs kept; the logs of workloads deleted meanwhile are swept."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import openai
import psutil
import pytest

from server import ADMIN_PASSWORD, start_server

from .conftest import PUBLIC_MS, engine_pids, new_key, openai_client, wait_phase

pytestmark = pytest.mark.slow

STARTED = "Uvicorn running on"  # the engine says it once per start


def test_no_orphans_after_kill_9_and_served_again(tmp_path: Path) -> None:
    server = start_server(tmp_path / "data", "--serve-bundled-model")
    try:
        token = server.setup_admin()
        with server.client(token) as admin:
            wait_phase(admin, f"{PUBLIC_MS}/smollm2")
        [engine] = engine_pids(server)
        os.kill(server.pid, signal.SIGKILL)
        assert server.proc is not None and server.proc.wait(10) == -signal.SIGKILL
        deadline = time.monotonic() + 10
        while psutil.pid_exists(engine) and time.monotonic() < deadline:
            try:
                if psutil.Process(engine).status() == psutil.STATUS_ZOMBIE:
                    break
            except psutil.NoSuchProcess:
                break
            time.sleep(0.05)
        alive = (
            psutil.pid_exists(engine) and psutil.Process(engine).status() != psutil.STATUS_ZOMBIE
        )
        assert not alive, "the engine outlived the server"
        logs = server.data_dir / "logs"
        kept = logs / "modelservices_llmos-public_smollm2_0.log"
        assert kept.read_text().count(STARTED) == 1
        # Left by workloads deleted while no server ran, and by something not a workload.
        orphans = [
            "modelservices_llmos-public_gone_0.log",
            "modelservices_llmos-public_gone_0.log.1",
            "notebooks_default_gone_0.log",
        ]
        for name in [*orphans, "jobs_default_other_0.log"]:
            (logs / name).write_text("a line\n")

        server.start()
        token = server.login("admin", ADMIN_PASSWORD)
        with server.client(token) as admin:
            seen = admin.get(f"{PUBLIC_MS}/smollm2").json()["status"]
            # Never the killed server's Ready: it was marked starting before the new one served.
            assert seen["phase"] != "Ready" or engine_pids(server), seen
            wait_phase(admin, f"{PUBLIC_MS}/smollm2")
            key = new_key(admin)
        assert len(engine_pids(server)) == 1
        # Swept before the server was ready.
        assert not [name for name in orphans if (logs / name).exists()]
        assert (logs / "jobs_default_other_0.log").exists()
        # Ready in the API can precede the gateway's routing table by a moment (it
        # follows the same change through its own watch): retry a 503 as clients do.
        client = openai_client(server, key)
        deadline = time.monotonic() + 15
        while True:
            try:
                reply = client.chat.completions.create(
                    model="smollm2", messages=[{"role": "user", "content": "Hi"}], max_tokens=4
                )
                break
            except openai.InternalServerError as exc:
                if exc.status_code != 503 or time.monotonic() > deadline:
                    raise
                time.sleep(0.2)
        assert reply.choices[0].message.content
        # The new engine has served, so it has started: its log goes on in the same file.
        while kept.read_text().count(STARTED) < 2:
            assert time.monotonic() < deadline + 15, "the new engine's start is not logged"
            time.sleep(0.1)
        assert kept.read_text().count(STARTED) == 2
        # The per-key usage totals are accounting: they outlive a restart.
        token = server.login("admin", ADMIN_PASSWORD)
        with server.client(token) as admin:
            counted = admin.get("/v1-auth/usage").json()["items"]
        assert reply.usage is not None
        assert [i["totalTokens"] for i in counted if i["apiKey"] != "session"] == [
            reply.usage.total_tokens
        ]
        assert server.stop() == 0
        server.start()
        token = server.login("admin", ADMIN_PASSWORD)
        with server.client(token) as admin:
            assert admin.get("/v1-auth/usage").json()["items"] == counted
    finally:
        server.stop()
