"""End to end: a tiny random Llama on the transformers engine, through a real llmos server.

The test builds the model offline, deploys it as a ModelService (engine
transformers, a local path), waits for Ready on a watch, talks to it with the
openai client through the gateway, and deletes it. Random weights write
gibberish: only shapes and counts are checked.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import openai
import orjson
import psutil
import pytest

from factories import create_ms, ms_path
from server import RunningServer
from tiny_model import HIDDEN_SIZE, build_tiny_llama, require_transformers

from .conftest import assert_only_the_gateway_gets_in, engine_pids, new_key, openai_client

pytestmark = pytest.mark.slow

NAME = "tiny-hf"
LABEL = "test=transformers-engine"
HF_SERVER = "llmos.engines.hf_server"


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    require_transformers()
    model = build_tiny_llama(tmp_path_factory.mktemp("tiny-llama"))
    # Readable by all, as a model must be for a root server's sandbox (it runs as nobody):
    # pytest makes its folders 0700, and save_pretrained its weights 0600.
    model.chmod(0o755)
    for file in model.iterdir():
        file.chmod(0o644)
    return model


@contextmanager
def watching(client: httpx.Client, seconds: int) -> Iterator[Iterator[dict[str, Any]]]:
    """This test's ModelService events, from now until the server ends the watch.

    Read on this thread and closed here, so no connection outlives the test (a
    stream still open holds up the server's shutdown).
    """
    params = {"watch": "true", "labelSelector": LABEL, "timeoutSeconds": str(seconds)}
    with client.stream("GET", ms_path("default"), params=params) as response:
        assert response.status_code == 200, response.read()
        yield (orjson.loads(line) for line in response.iter_lines() if line.strip())


def first(events: Iterator[dict[str, Any]], done: Callable[[dict[str, Any]], bool]) -> None:
    """Wait for an event ``done`` accepts; fail at once on a phase that will not recover."""
    last: dict[str, Any] = {}
    for last in events:
        if done(last):
            return
        status = last["object"].get("status") or {}
        assert status.get("phase") not in ("Failed", "CrashLoop"), status
    raise AssertionError(f"the watch ended first; last event: {last}")


def phase_is(phase: str) -> Callable[[dict[str, Any]], bool]:
    return lambda event: (event["object"].get("status") or {}).get("phase") == phase


@pytest.fixture(scope="module")
def deployed(server: RunningServer, tiny_model: Path) -> Iterator[RunningServer]:
    token = server.admin_token
    with (
        server.client(token) as admin,
        httpx.Client(
            base_url=server.url,
            verify=server.ssl_context(),
            headers={"Authorization": f"Bearer {token}"},
            timeout=httpx.Timeout(10, read=None),  # the watch's timeoutSeconds bounds it
        ) as streaming,
    ):
        with watching(streaming, 180) as events:
            create_ms(
                admin,
                "default",
                NAME,
                model=str(tiny_model),
                modelRegistry="local",
                engine="transformers",
                replicas=1,
                labels=dict([LABEL.split("=")]),
            )
            first(events, phase_is("Ready"))
        engines = [psutil.Process(pid) for pid in engine_pids(server, HF_SERVER)]
        assert len(engines) == 1
        try:
            yield server
        finally:
            with watching(streaming, 60) as events:
                response = admin.delete(ms_path("default", NAME))
                assert response.status_code == 200, response.text
                first(events, lambda event: event["type"] == "DELETED")
    _, alive = psutil.wait_procs(engines, timeout=30)
    assert not alive, "the engine outlived its ModelService"


def test_tiny_llama_served_through_the_gateway(deployed: RunningServer) -> None:
    with deployed.admin_client() as admin:
        key = new_key(admin, description="transformers e2e")
    # Closed at the end: an open keep-alive connection holds up the server's shutdown.
    with openai_client(deployed, key) as client:
        check_serving(client)
    with deployed.admin_client() as admin:
        assert_only_the_gateway_gets_in(admin, ms_path("default", NAME), NAME)


def check_serving(client: openai.OpenAI) -> None:
    assert NAME in [m.id for m in client.models.list().data]

    reply = client.chat.completions.create(
        model=NAME,
        messages=[{"role": "user", "content": "say hello"}],
        max_tokens=8,
        temperature=0,
    )
    text = reply.choices[0].message.content
    assert text and text.strip()
    assert reply.usage is not None
    assert reply.usage.completion_tokens == 8 and reply.usage.prompt_tokens > 0
    assert reply.usage.total_tokens == reply.usage.prompt_tokens + 8

    chunks = list(
        client.chat.completions.create(
            model=NAME,
            messages=[{"role": "user", "content": "say hello"}],
            max_tokens=8,
            temperature=0,
            stream=True,
            stream_options={"include_usage": True},
        )
    )
    pieces = [
        c.choices[0].delta.content for c in chunks if c.choices and c.choices[0].delta.content
    ]
    assert len(pieces) > 1, "a stream arrives in several chunks"
    assert "".join(pieces) == text, "greedy decoding streams the same text"
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "length"
    assert chunks[-1].usage is not None and chunks[-1].usage.completion_tokens == 8

    completion = client.completions.create(model=NAME, prompt="the sky is", max_tokens=4)
    assert completion.choices[0].text and completion.usage is not None

    embeddings = client.embeddings.create(model=NAME, input=["hello", "the sky is blue"])
    assert [len(d.embedding) for d in embeddings.data] == [HIDDEN_SIZE, HIDDEN_SIZE]
    assert math.isclose(math.fsum(x * x for x in embeddings.data[0].embedding), 1.0, rel_tol=1e-4)


def test_malformed_body_gets_a_400_from_the_gateway_or_the_engine(
    deployed: RunningServer,
) -> None:
    hi = [{"role": "user", "content": "hi"}]
    with deployed.admin_client() as admin:
        # A field the gateway checks itself, before any replica sees it.
        checked = admin.post(
            "/v1/chat/completions",
            json={"model": NAME, "messages": "not a list", "max_tokens": 4},
        )
        # One it leaves to the engine: the built-in server's own 400, passed on as it is.
        passed = admin.post(
            "/v1/chat/completions",
            json={"model": NAME, "messages": hi, "max_tokens": 4, "stop": ["x"] * 17},
        )
    for response, param in ((checked, "messages"), (passed, "stop")):
        assert response.status_code == 400, response.text
        error = response.json()["error"]
        assert error["type"] == "invalid_request_error" and error["param"] == param, error
    assert "at most 16 stop strings" in passed.json()["error"]["message"]
