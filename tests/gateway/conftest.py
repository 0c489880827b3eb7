"""A real server serving the bundled SmolLM2 through llama.cpp, and helpers to wait on it."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import httpx
import openai
import pytest

from processes import descendants
from sandboxed import is_the_program
from server import RunningServer, admin_server

PUBLIC_MS = "/apis/ml.llmos.ai/v1/namespaces/llmos-public/modelservices"
# SmolLM2's <|endoftext|> and <|im_end|> as a chat request's logit_bias: banned, the model
# writes until max_tokens.
NEVER_STOP = {"0": -100, "2": -100}


def wait_phase(
    admin: httpx.Client, path: str, phase: str = "Ready", timeout: float = 180.0
) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    last: dict[str, Any] = {}
    while time.monotonic() < deadline:
        response = admin.get(path)
        if response.status_code == 200:
            last = response.json()
            if (last.get("status") or {}).get("phase") == phase:
                return last
        time.sleep(0.2)
    raise AssertionError(f"{path} did not reach {phase}: {last.get('status')}")


def engine_pids(server: RunningServer, module: str = "llmos.engines.llama_server") -> list[int]:
    """PIDs of this server's engine processes that run ``module`` (llama.cpp by default)."""
    # The engine itself, not the sandbox (bwrap) around it, which names it too.
    return [
        child.pid
        for child, argv in descendants(server.pid)
        if is_the_program(argv) and module in " ".join(argv)
    ]


def openai_client(server: RunningServer, key: str) -> openai.OpenAI:
    return openai.OpenAI(
        base_url=f"{server.url}/v1",
        api_key=key,
        http_client=httpx.Client(verify=server.ssl_context(), timeout=120),
        max_retries=0,
    )


@pytest.fixture(scope="module")
def model_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    data = tmp_path_factory.mktemp("gateway") / "data"
    with admin_server(data, "--serve-bundled-model") as running:
        with running.admin_client() as admin:
            wait_phase(admin, f"{PUBLIC_MS}/smollm2")
        yield running


@pytest.fixture
def gw_admin(model_server: RunningServer) -> Iterator[httpx.Client]:
    with model_server.admin_client() as client:
        yield client


def new_key(admin: httpx.Client, **body: Any) -> str:
    response = admin.post("/v1-auth/apikeys", json=body)
    assert response.status_code == 201, response.text
    return str(response.json()["token"])


def assert_only_the_gateway_gets_in(admin: httpx.Client, path: str, model: str) -> None:
    """A process on this machine that calls the replica's port itself, not the gateway,
    is refused, with no key, a wrong one, or the LLMOS credential the gateway took."""
    (endpoint,) = admin.get(path).json()["status"]["endpoints"]
    body = {"model": model, "messages": [{"role": "user", "content": "hi"}], "max_tokens": 2}
    llmos_credential = admin.headers["authorization"]
    with httpx.Client(base_url=endpoint, timeout=30) as direct:
        for headers in ({}, {"authorization": "Bearer wrong"}, {"authorization": llmos_credential}):
            reply = direct.post("/v1/chat/completions", json=body, headers=headers)
            assert reply.status_code == 401, (headers, reply.text)
            assert direct.get("/v1/models", headers=headers).status_code == 401
