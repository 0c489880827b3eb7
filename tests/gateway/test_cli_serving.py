"""`llmos run`, `llmos chat` and `llmos logs` against a server with the real model."""

from __future__ import annotations

import json
import re
import time
from pathlib import Path

import httpx
import pytest

from cli.runner import CLI, assert_fails, line_with, run_in_terminal, start_cli
from factories import create_ms, ms_path
from server import RunningServer

from .conftest import wait_phase

pytestmark = pytest.mark.slow


@pytest.fixture
def user(tmp_path: Path, model_server: RunningServer) -> CLI:
    cli = CLI(tmp_path / "config")
    assert cli.login(model_server).code == 0
    return cli


def test_run_chat_and_logs(user: CLI, model_server: RunningServer) -> None:
    created = user("run", "bundled:smollm2", "--name", "cli-demo", timeout=180)
    assert created.code == 0, created
    assert "cli-demo is ready" in created.stderr
    # Off a terminal, the wait is told line by line as the phase changes.
    waited = created.stderr.splitlines()
    assert waited[:2] == [
        "modelservice/cli-demo created in namespace default",
        "Waiting for cli-demo to be ready…",
    ], created.stderr
    assert "cli-demo: Ready" in waited, created.stderr
    assert "llmos chat default/cli-demo" in created.stderr

    # Temperature 0: the tiny model's answer is deterministic (and not blank).
    once = user(
        "chat", "cli-demo", "-m", "Say hi.", "--max-tokens", "8", "--temperature", "0", timeout=60
    )
    assert once.code == 0, once
    assert once.stdout.strip(), "the streamed answer is printed"

    piped = user(
        "chat", "cli-demo", "--max-tokens", "6", "--temperature", "0",
        stdin="Say hi.\nSay hi again.\n", timeout=90,
    )  # fmt: skip
    assert piped.code == 0, piped
    assert len([line for line in piped.stdout.splitlines() if line.strip()]) >= 2, piped

    # On a terminal: a greeting, a prompt per turn, the answer between them; /exit leaves.
    code, coloured = run_in_terminal(
        user.config_home, "chat", "cli-demo", "--max-tokens", "6", "--temperature", "0",
        dialogue=[("> ", "Say hi."), ("> ", "/exit")], timeout=90,
    )  # fmt: skip
    shown = re.sub(r"\x1b\[[0-9;]*m", "", coloured)
    assert code == 0, shown
    assert "Chatting with cli-demo. Ctrl-D or /exit to leave." in shown
    answer = shown.split("Say hi.", 1)[1].split("> ", 1)[0]
    assert answer.strip(), shown

    logs = user("logs", "ms/cli-demo", "--tail", "3")
    assert logs.code == 0, logs
    assert 0 < len(logs.stdout.splitlines()) <= 3

    # Scaled to 0, its engine stops; what it logged is still there to read.
    scaled = user("scale", "ms", "cli-demo", "--replicas", "0")
    assert scaled.stdout == "modelservice/cli-demo scaled to 0 replicas\n", scaled
    with model_server.admin_client() as admin:
        wait_phase(admin, ms_path("default", "cli-demo"), "Stopped", 60)
    apart = user("logs", "ms", "cli-demo", "--tail", "3")  # as describe takes them
    assert apart.code == 0 and apart.stdout, apart
    kept = user("logs", "ms/cli-demo")
    assert kept.code == 0, kept
    assert all(line in kept.stdout.splitlines() for line in logs.stdout.splitlines()), kept
    never = user("logs", "ms/cli-demo", "--replica", "5")
    assert_fails(never, 1, "ModelService 'cli-demo' has no replica 5 on this node, and no log")
    assert_fails(user("logs", "volume/x"), 2, "not 'volume'")


def test_run_reports_a_missing_engine(user: CLI) -> None:
    result = user(
        "run", "bundled:smollm2", "--name", "no-vllm", "--engine", "vllm", "--timeout", "30"
    )
    assert_fails(result, 1, "no-vllm is Failed", "uv tool install vllm")


def test_chat_with_an_unknown_model(user: CLI) -> None:
    assert_fails(user("chat", "ghost", "-m", "hi"), 1, "does not exist")


def test_run_from_modelscope_without_waiting(user: CLI) -> None:
    created = user("run", "Qwen/Qwen2-0.5B", "--name", "from-ms", "--registry", "modelscope",
                   "--memory", "2Gi", "--cpu", "500m", "--no-wait")  # fmt: skip
    assert created.code == 0, created
    assert "modelservice/from-ms created" in created.stderr
    shown = user("get", "modelservice", "from-ms", "-o", "json")
    assert shown.code == 0, shown
    assert '"modelRegistry": "modelscope"' in shown.stdout
    assert json.loads(shown.stdout)["spec"]["resources"] == {"memory": "2Gi", "cpu": "500m"}
    bad = user("run", "x/y", "--name", "bad-mem", "--memory", "lots", "--no-wait")
    assert_fails(bad, 1, "spec.resources.memory", "is not a quantity")
    assert user("delete", "modelservice", "from-ms").code == 0
    wrong = user("run", "x/y", "--registry", "pypi", "--no-wait")
    assert wrong.code == 2 and "'pypi' is not one of" in wrong.stderr, wrong


STARTED = "Uvicorn running on"  # the engine says it once per start


def wait_gone(admin: httpx.Client, path: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while admin.get(path).status_code != 404:
        assert time.monotonic() < deadline, f"{path} is still there after {timeout}s"
        time.sleep(0.2)


def test_a_deleted_model_service_takes_its_logs_along(
    user: CLI, model_server: RunningServer
) -> None:
    """Deleting a ModelService ends a follower cleanly and deletes its replica's log files
    (every rotation), so one made again with the same name shows only its own logs."""
    path = ms_path("default", "relog")
    log_dir = model_server.data_dir / "logs"
    current = log_dir / "modelservices_default_relog_0.log"
    with model_server.admin_client() as admin:
        create_ms(admin, "default", "relog", replicas=1)
        wait_phase(admin, path)
        with current.open("a") as file:  # the engine appends after this: it stays in
            file.write("written by the first relog\n")
        (log_dir / f"{current.name}.1").write_text("an older file of the first relog\n")

        follower = start_cli(user.config_home, "logs", "-f", "ms/relog")
        try:
            assert follower.stdout is not None
            assert follower.stdout.readline()  # the backlog: the follower is subscribed
            # A line the engine writes now arrives while following (its access log).
            chat = admin.post(
                "/v1/chat/completions",
                json={
                    "model": "relog",
                    "messages": [{"role": "user", "content": "hi"}],
                    "max_tokens": 2,
                },
                timeout=60,
            )
            assert chat.status_code == 200, chat.text
            assert line_with(follower.stdout, '"POST /v1/chat/completions HTTP/1.1" 200', 30)
            assert admin.delete(path).status_code == 200
            out, err = follower.communicate(timeout=60)  # the stream ends with the replica
        finally:
            follower.kill()
            follower.wait()
        assert follower.returncode == 0 and not err, (out, err)
        wait_gone(admin, path)
        # The finalizer deleted the files before it let the object go.
        assert sorted(log_dir.glob(f"{current.name}*")) == []

        create_ms(admin, "default", "relog", replicas=1)
        wait_phase(admin, path)
        again = admin.get(f"{path}/logs")
        assert again.status_code == 200
        assert again.text.count(STARTED) == 1, again.text
        assert "first relog" not in again.text
        assert sorted(p.name for p in log_dir.glob(f"{current.name}*")) == [current.name]
        assert admin.delete(path).status_code == 200


def test_run_stops_at_once_on_a_shortfall_no_wait_cures(user: CLI) -> None:
    started = time.monotonic()
    result = user(
        "run", "bundled:smollm2", "--name", "too-big", "--memory", "100000Gi", "--timeout", "120"
    )
    assert_fails(
        result, 1, "too-big cannot run on this node: needs 100000 GiB of memory; this node has only"
    )
    assert time.monotonic() - started < 60, "it did not wait out its timeout"
    assert user("delete", "ms", "too-big").code == 0
