"""`llmos run`, `llmos chat` and `llmos logs` against a server with the real model."""

from __future__ import annotations

from pathlib import Path

import pytest

from cli.runner import CLI, assert_fails
from server import RunningServer

pytestmark = pytest.mark.slow


@pytest.fixture
def user(tmp_path: Path, model_server: RunningServer) -> CLI:
    cli = CLI(tmp_path / "config")
    assert cli.login(model_server).code == 0
    return cli


def test_run_chat_and_logs(user: CLI) -> None:
    created = user("run", "bundled:smollm2", "--name", "cli-demo", timeout=180)
    assert created.code == 0, created
    assert "cli-demo is ready" in created.stderr
    assert "llmos chat cli-demo" in created.stderr

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
    assert len([line for line in piped.stdout.splitlines() if line.strip()]) >= 1

    logs = user("logs", "ms/cli-demo", "--tail", "3")
    assert logs.code == 0, logs
    assert 0 < len(logs.stdout.splitlines()) <= 3


def test_run_reports_a_missing_engine(user: CLI) -> None:
    result = user(
        "run", "bundled:smollm2", "--name", "no-vllm", "--engine", "vllm", "--timeout", "30"
    )
    assert_fails(result, 1, "no-vllm is Failed", "uv tool install vllm")


def test_chat_with_an_unknown_model(user: CLI) -> None:
    assert_fails(user("chat", "ghost", "-m", "hi"), 1, "does not exist")


def test_run_from_modelscope_without_waiting(user: CLI) -> None:
    created = user("run", "Qwen/Qwen2-0.5B", "--name", "from-ms", "--registry", "modelscope",
                   "--no-wait")  # fmt: skip
    assert created.code == 0, created
    assert "modelservice/from-ms created" in created.stderr
    shown = user("get", "modelservice", "from-ms", "-o", "json")
    assert shown.code == 0, shown
    assert '"modelRegistry": "modelscope"' in shown.stdout
    assert user("delete", "modelservice", "from-ms").code == 0
    wrong = user("run", "x/y", "--registry", "pypi", "--no-wait")
    assert wrong.code == 2 and "'pypi' is not one of" in wrong.stderr, wrong
