"""End to end: the bundled SmolLM2 on llama.cpp, through the gateway, with the openai client."""

from __future__ import annotations

import json
import os
import re
import time
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest

from factories import create_ms, create_namespace, create_user, ms_path
from server import RunningServer

from .conftest import (
    PUBLIC_MS,
    assert_only_the_gateway_gets_in,
    engine_pids,
    new_key,
    openai_client,
    wait_phase,
)

pytestmark = pytest.mark.slow


def _usage(admin: httpx.Client) -> dict[str, int]:
    items = admin.get("/v1-auth/usage").json()["items"]
    totals = {"prompt": 0, "completion": 0, "requests": 0}
    for item in items:
        totals["prompt"] += item["promptTokens"]
        totals["completion"] += item["completionTokens"]
        totals["requests"] += item["requests"]
    return totals


def test_chat_non_streamed_and_streamed(
    model_server: RunningServer, gw_admin: httpx.Client
) -> None:
    client = openai_client(model_server, new_key(gw_admin, description="e2e"))
    assert "smollm2" in [m.id for m in client.models.list().data]
    # created: Unix seconds, as OpenAI's (when the ModelService was made, this run).
    created = client.models.retrieve("smollm2").created
    assert abs(created - time.time()) < 3600, created
    before = _usage(gw_admin)
    reply = client.chat.completions.create(
        model="smollm2",
        messages=[{"role": "user", "content": "Say hello in three words."}],
        max_tokens=16,
    )
    text = reply.choices[0].message.content
    assert text and text.strip()
    assert reply.usage is not None and reply.usage.completion_tokens > 0
    after = _usage(gw_admin)
    assert after["prompt"] - before["prompt"] == reply.usage.prompt_tokens
    assert after["completion"] - before["completion"] == reply.usage.completion_tokens

    chunks = client.chat.completions.create(
        model="smollm2",
        messages=[{"role": "user", "content": "Count from one to five."}],
        max_tokens=16,
        stream=True,
    )
    pieces = [
        c.choices[0].delta.content for c in chunks if c.choices and c.choices[0].delta.content
    ]
    assert len(pieces) > 1, "a stream arrives in several chunks"
    assert "".join(pieces).strip()
    # A stream's usage is recorded as the gateway closes it, just after the last byte.
    deadline = time.monotonic() + 5
    while _usage(gw_admin)["completion"] <= after["completion"] and time.monotonic() < deadline:
        time.sleep(0.05)
    assert _usage(gw_admin)["completion"] > after["completion"]


def _rose_by(admin: httpx.Client, before: dict[str, int], usage: Any) -> None:
    """The usage counters rose by ``usage`` (a stream's is recorded as the gateway closes it)."""
    deadline = time.monotonic() + 5
    while _usage(admin)["prompt"] == before["prompt"] and time.monotonic() < deadline:
        time.sleep(0.05)
    after = _usage(admin)
    assert after["prompt"] - before["prompt"] == usage.prompt_tokens
    assert after["completion"] - before["completion"] == usage.completion_tokens


def test_a_stream_that_asks_for_usage_ends_with_the_engines_counts(
    model_server: RunningServer, gw_admin: httpx.Client
) -> None:
    client = openai_client(model_server, new_key(gw_admin))
    ask: dict[str, Any] = {
        "model": "smollm2",
        "messages": [{"role": "user", "content": "Name three colours."}],
        "max_tokens": 12,
        "temperature": 0,
    }
    whole = client.chat.completions.create(**ask)
    assert whole.usage is not None
    before = _usage(gw_admin)
    plain = list(client.chat.completions.create(**ask, stream=True))
    assert all(chunk.choices for chunk in plain), "no usage chunk unless asked (as OpenAI)"
    assert all(chunk.usage is None for chunk in plain)
    # The gateway asked for it all the same, so the stream is counted exactly.
    _rose_by(gw_admin, before, whole.usage)
    before = _usage(gw_admin)
    counted = list(
        client.chat.completions.create(**ask, stream=True, stream_options={"include_usage": True})
    )
    last = counted[-1]
    assert last.choices == [] and last.usage is not None
    # The same counts llama.cpp reports without streaming (llmos.engines.llama_server).
    assert (last.usage.prompt_tokens, last.usage.completion_tokens) == (
        whole.usage.prompt_tokens,
        whole.usage.completion_tokens,
    )
    _rose_by(gw_admin, before, whole.usage)
    # Completions too.
    text = {"model": "smollm2", "prompt": "The sky is", "max_tokens": 6, "temperature": 0}
    once = client.completions.create(**text)
    streamed = list(
        client.completions.create(**text, stream=True, stream_options={"include_usage": True})
    )
    assert streamed[-1].usage is not None and once.usage is not None
    assert streamed[-1].usage.total_tokens == once.usage.total_tokens


def test_the_engine_answers_only_the_gateway(
    model_server: RunningServer, gw_admin: httpx.Client
) -> None:
    assert_only_the_gateway_gets_in(gw_admin, f"{PUBLIC_MS}/smollm2", "smollm2")
    # ...while the gateway, which holds the replica's key, gets its answer.
    reply = openai_client(model_server, new_key(gw_admin)).chat.completions.create(
        model="smollm2", messages=[{"role": "user", "content": "hi"}], max_tokens=2
    )
    assert reply.choices[0].message.content is not None


def test_the_engine_runs_in_the_sandbox(
    model_server: RunningServer, gw_admin: httpx.Client
) -> None:
    ms = gw_admin.get(f"{PUBLIC_MS}/smollm2").json()
    isolated = next(c for c in ms["status"]["conditions"] if c["type"] == "Isolated")
    assert isolated["status"] == "True", isolated
    [pid] = engine_pids(model_server)
    # Its own PID namespace, and a view of the data dir with nothing in it (no database,
    # keys or logs): the bundled model comes from the Python environment, read-only.
    assert os.readlink(f"/proc/{pid}/ns/pid") != os.readlink("/proc/self/ns/pid")
    assert os.listdir(f"/proc/{pid}/root{model_server.data_dir}") == []
    assert (model_server.data_dir / "llmos.db").exists()


def test_completions_endpoint(model_server: RunningServer, gw_admin: httpx.Client) -> None:
    client = openai_client(model_server, new_key(gw_admin))
    reply = client.completions.create(model="smollm2", prompt="The sky is", max_tokens=8)
    assert reply.choices[0].text.strip()


def test_scoped_key_and_rate_limit(model_server: RunningServer, gw_admin: httpx.Client) -> None:
    scoped = openai_client(model_server, new_key(gw_admin, scopes=["another-model"]))
    with pytest.raises(openai.PermissionDeniedError) as denied:
        scoped.chat.completions.create(
            model="smollm2", messages=[{"role": "user", "content": "hi"}], max_tokens=2
        )
    assert "may not use model 'smollm2'" in str(denied.value)
    assert [m.id for m in scoped.models.list().data] == []
    with pytest.raises(openai.NotFoundError) as hidden:
        scoped.models.retrieve("smollm2")  # hidden from it here as in the list
    assert "'smollm2' does not exist or you do not have access" in str(hidden.value)

    limited = openai_client(model_server, new_key(gw_admin, requestsPerMinute=2))
    for _ in range(2):
        limited.chat.completions.create(
            model="smollm2", messages=[{"role": "user", "content": "hi"}], max_tokens=2
        )
    with pytest.raises(openai.RateLimitError) as limited_error:
        limited.chat.completions.create(
            model="smollm2", messages=[{"role": "user", "content": "hi"}], max_tokens=2
        )
    assert int(limited_error.value.response.headers["retry-after"]) >= 1

    # Tokens per minute: the first reply spends more than the key's 10; the next waits.
    frugal = openai_client(model_server, new_key(gw_admin, tokensPerMinute=10))
    spent = frugal.chat.completions.create(
        model="smollm2", messages=[{"role": "user", "content": "hi"}], max_tokens=8
    )
    assert spent.usage is not None and spent.usage.total_tokens > 10
    with pytest.raises(openai.RateLimitError) as over:
        frugal.chat.completions.create(
            model="smollm2", messages=[{"role": "user", "content": "hi"}], max_tokens=2
        )
    assert "10 tokens/min" in str(over.value)
    assert int(over.value.response.headers["retry-after"]) >= 1


@pytest.mark.parametrize(
    ("body", "status", "says"),
    [
        (b'{"model": "smollm2", "messages": [', 400, "not valid JSON"),
        (b'["smollm2"]', 400, "must be a JSON object"),
        (b'{"messages": []}', 400, "'model' is required"),
        (b'{"model": "no-such-model", "messages": []}', 404, "does not exist"),
    ],
)
def test_bad_requests_get_openai_errors(
    model_server: RunningServer, gw_admin: httpx.Client, body: bytes, status: int, says: str
) -> None:
    key = new_key(gw_admin)
    with model_server.client(key) as client:
        response = client.post(
            "/v1/chat/completions", content=body, headers={"Content-Type": "application/json"}
        )
    assert response.status_code == status
    error = response.json()["error"]
    assert says in error["message"] and error["type"]


_HI = [{"role": "user", "content": "hi"}]


@pytest.mark.parametrize(
    ("path", "fields", "param", "says"),
    [
        ("/v1/chat/completions", {"messages": "hi"}, "messages", "expected an array"),
        ("/v1/chat/completions", {"messages": []}, "messages", "empty array"),
        ("/v1/chat/completions", {}, "messages", "Missing required parameter"),
        ("/v1/chat/completions", {"messages": ["hi"]}, "messages[0]", "expected an object"),
        ("/v1/chat/completions", {"messages": [{"content": "hi"}]}, "messages[0].role", "Missing"),
        (
            "/v1/chat/completions",
            {"messages": [{"role": "user", "content": 5}]},
            "messages[0].content",
            "got an integer",
        ),
        ("/v1/chat/completions", {"messages": _HI, "max_tokens": "abc"}, "max_tokens", "a string"),
        ("/v1/chat/completions", {"messages": _HI, "max_tokens": 0}, "max_tokens", ">= 1"),
        ("/v1/chat/completions", {"messages": _HI, "max_tokens": True}, "max_tokens", "boolean"),
        (
            "/v1/chat/completions",
            {"messages": _HI, "max_completion_tokens": 1.5},
            "max_completion_tokens",
            "got a number",
        ),
        ("/v1/chat/completions", {"messages": _HI, "n": "2"}, "n", "expected an integer"),
        ("/v1/chat/completions", {"messages": _HI, "temperature": "hot"}, "temperature", "number"),
        ("/v1/chat/completions", {"messages": _HI, "top_p": [1]}, "top_p", "got an array"),
        ("/v1/chat/completions", {"messages": _HI, "stream": "yes"}, "stream", "a boolean"),
        ("/v1/completions", {"prompt": 5}, "prompt", "a string or an array"),
        ("/v1/completions", {}, "prompt", "Missing required parameter"),
        ("/v1/embeddings", {"input": {"text": "x"}}, "input", "got an object"),
        ("/v1/embeddings", {"input": ""}, "input", "empty string"),
        ("/v1/embeddings", {"input": []}, "input", "empty array"),
    ],
)
def test_wrongly_typed_fields_get_a_400_naming_them(
    model_server: RunningServer,
    gw_admin: httpx.Client,
    path: str,
    fields: dict[str, object],
    param: str,
    says: str,
) -> None:
    """The engine is never asked: llama.cpp answers these with a 500 carrying its source path."""
    with model_server.client(new_key(gw_admin)) as client:
        response = client.post(path, json={"model": "smollm2", **fields})
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert error["type"] == "invalid_request_error"
    assert error["param"] == param
    assert says in error["message"], error["message"]
    assert "File" not in error["message"]


def test_the_openai_client_learns_which_field_is_wrong(
    model_server: RunningServer, gw_admin: httpx.Client
) -> None:
    client = openai_client(model_server, new_key(gw_admin))
    with pytest.raises(openai.BadRequestError) as bad:
        client.chat.completions.create(model="smollm2", messages="hi")  # type: ignore[arg-type]
    assert bad.value.param == "messages"
    with pytest.raises(openai.BadRequestError) as bad:
        client.chat.completions.create(
            model="smollm2",
            messages=[{"role": "user", "content": "hi"}],
            max_tokens="abc",  # type: ignore[arg-type]
        )
    assert bad.value.param == "max_tokens"
    assert bad.value.code == "invalid_type"


_PATH = re.compile(r"/[\w.-]+/")


def _leaks_nothing(body: dict[str, object]) -> None:
    text = json.dumps(body)
    assert "Traceback" not in text and 'File \\"' not in text and ".py" not in text, text
    assert not _PATH.search(text), text


def test_embeddings_from_a_chat_model_are_a_client_error(
    model_server: RunningServer, gw_admin: httpx.Client
) -> None:
    client = openai_client(model_server, new_key(gw_admin))
    # The bundled chat model was not started for embeddings (llama.cpp itself would answer
    # a 500, which the openai client retries): the gateway says so, once.
    with pytest.raises(openai.BadRequestError) as refused:
        client.embeddings.create(model="smollm2", input="hello")
    error = refused.value.response.json()["error"]
    assert error["message"] == (
        "model 'smollm2' does not serve /v1/embeddings: it runs on llama.cpp without "
        "embeddings: serve an embedding model with engineArgs ['--embedding', 'true']"
    )
    assert (error["type"], error["code"], error["param"]) == (
        "invalid_request_error",
        "unsupported_endpoint",
        "model",
    )
    assert "embedding=True" not in model_server.log(), "nothing reached the engine"


def test_an_engine_failure_reaches_the_client_without_its_traceback(
    model_server: RunningServer, gw_admin: httpx.Client
) -> None:
    # A role llama.cpp does not know: its 500 names the file and line of its server.
    with model_server.client(new_key(gw_admin)) as raw:
        response = raw.post(
            "/v1/chat/completions",
            json={"model": "smollm2", "messages": [{"role": "wizard", "content": "hi"}]},
        )
    assert response.status_code == 500
    assert response.headers["content-type"] == "application/json"
    assert "validation error" in response.json()["error"]["message"]
    _leaks_nothing(response.json())
    # The server's log has the whole reply.
    assert "llama_cpp/server/app.py" in model_server.log()


def test_auth_and_size_errors(model_server: RunningServer) -> None:
    with model_server.client() as anonymous:
        response = anonymous.post("/v1/chat/completions", json={"model": "smollm2"})
        assert response.status_code == 401
        assert response.json()["error"]["type"] == "authentication_error"
        bad_key = anonymous.get("/v1/models", headers={"Authorization": "Bearer nope.nope"})
        assert bad_key.status_code == 401
        assert bad_key.json()["error"]["message"] == (
            "unknown or revoked token: send an LLMOS API key (`llmos apikeys create`, or the "
            "dashboard's Account page) as 'Authorization: Bearer KEY'"
        )
    with model_server.admin_client() as admin:
        huge = b'{"model": "smollm2", "prompt": "' + b"x" * (17 * 1024 * 1024) + b'"}'
        response = admin.post(
            "/v1/completions", content=huge, headers={"Content-Type": "application/json"}
        )
        assert response.status_code == 413
        assert response.json()["error"]["type"] == "invalid_request_error"


def test_models_lists_only_what_the_caller_may_use(
    model_server: RunningServer, gw_admin: httpx.Client
) -> None:
    create_namespace(gw_admin, "private-models")
    body = {
        "apiVersion": "ml.llmos.ai/v1",
        "kind": "ModelService",
        "metadata": {"name": "secret-model"},
        "spec": {"model": "bundled:smollm2", "replicas": 0},
    }
    path = "/apis/ml.llmos.ai/v1/namespaces/private-models/modelservices"
    assert gw_admin.post(path, json=body).status_code == 201
    create_user(gw_admin, "viewer", "viewer-password-1")
    token = model_server.login("viewer", "viewer-password-1")
    with model_server.client(token) as viewer:
        listed = viewer.get("/v1/models").json()["data"]
        missing = viewer.post(
            "/v1/chat/completions", json={"model": "secret-model", "messages": []}
        )
        # One model, OpenAI's "retrieve": by its served name or as namespace/name.
        ones = [viewer.get(f"/v1/models/{n}") for n in ("smollm2", "llmos-public/smollm2")]
        unseen = viewer.get("/v1/models/secret-model")
    ids = [m["id"] for m in listed]
    assert "smollm2" in ids and "secret-model" not in ids
    assert missing.status_code == 404
    for one in ones:
        assert one.status_code == 200, one.text
        assert one.json() == next(m for m in listed if m["id"] == "smollm2")
    assert (unseen.status_code, unseen.json()["error"]["code"]) == (404, "model_not_found")
    assert gw_admin.get("/v1/models/private-models/secret-model").json()["id"] == "secret-model"
    assert gw_admin.post("/v1/models/smollm2").status_code == 405
    admin_ids = [m["id"] for m in gw_admin.get("/v1/models").json()["data"]]
    assert "secret-model" in admin_ids
    # Scaled to zero: it exists but nothing serves it.
    idle = gw_admin.post(
        "/v1/chat/completions",
        json={"model": "secret-model", "messages": [{"role": "user", "content": "hi"}]},
    )
    assert idle.status_code == 503
    assert "retry-after" not in idle.headers  # waiting will not bring a replica
    assert idle.json()["error"]["message"] == (
        "model 'secret-model' is scaled to 0 replicas: scale it up to serve it "
        "(llmos scale ms secret-model -n private-models --replicas 1)"
    )


def test_engine_crash_is_recovered(model_server: RunningServer, gw_admin: httpx.Client) -> None:
    client = openai_client(model_server, new_key(gw_admin))
    [pid] = engine_pids(model_server)
    import os
    import signal

    os.kill(pid, signal.SIGKILL)
    statuses = []
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        response = gw_admin.post(
            "/v1/chat/completions",
            json={
                "model": "smollm2",
                "messages": [{"role": "user", "content": "hi"}],
                "max_tokens": 2,
            },
        )
        statuses.append(response.status_code)
        if response.status_code == 503:
            assert response.json()["error"]["type"] == "service_unavailable"
            assert int(response.headers["retry-after"]) > 0
            break
    # The first request after the kill is answered 503 (retry), never a 5xx of another kind.
    assert statuses == [503], statuses
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not (set(engine_pids(model_server)) - {pid}):
        time.sleep(0.1)
    assert set(engine_pids(model_server)) - {pid}, "the engine was not restarted"
    # Served again once the new replica is ready.
    reply = None
    while time.monotonic() < deadline:
        try:
            reply = client.chat.completions.create(
                model="smollm2", messages=[{"role": "user", "content": "Hello"}], max_tokens=4
            )
            break
        except openai.APIStatusError as exc:
            assert exc.status_code == 503, exc
            time.sleep(0.2)
    assert reply is not None and reply.choices[0].message.content
    ms = wait_phase(gw_admin, f"{PUBLIC_MS}/smollm2")
    assert ms["status"]["readyReplicas"] == 1
    events = gw_admin.get("/apis/node.llmos.ai/v1/namespaces/llmos-public/events").json()["items"]
    reasons = {e["spec"]["reason"] for e in events}
    assert {"Started", "Ready", "BackOff"} <= reasons


def test_logs_are_served(model_server: RunningServer, gw_admin: httpx.Client) -> None:
    response = gw_admin.get(f"{PUBLIC_MS}/smollm2/logs", params={"tailLines": "5"})
    assert response.status_code == 200
    lines = response.text.splitlines()
    assert 0 < len(lines) <= 5
    missing = gw_admin.get(f"{PUBLIC_MS}/smollm2/logs", params={"replica": "7"})
    assert missing.status_code == 404
    # The requests this module made are there; the probe's (every 2 s since start) are not.
    whole = gw_admin.get(f"{PUBLIC_MS}/smollm2/logs").text
    assert '"POST /v1/chat/completions HTTP/1.1" 200' in whole
    assert "/health" not in whole


def test_an_engine_that_keeps_crashing_shows_crashloop_with_its_last_lines(
    model_server: RunningServer, gw_admin: httpx.Client
) -> None:
    path = ms_path("default", "crashes")
    # llama.cpp's server refuses a flag it does not know, at each start.
    create_ms(gw_admin, "default", "crashes", replicas=1, engineArgs=["--no_such_flag", "1"])
    try:
        status = wait_phase(gw_admin, path, "CrashLoop", 120)["status"]
        assert "unrecognized arguments: --no_such_flag 1" in status["message"], status
        assert "failures in 300s" in status["message"]
        crash_loop = next(c for c in status["conditions"] if c["type"] == "CrashLoop")
        assert crash_loop["status"] == "True"
        events = gw_admin.get("/apis/node.llmos.ai/v1/namespaces/default/events").json()
        backoffs = [
            e["spec"]
            for e in events["items"]
            if e["spec"]["involvedObject"]["name"] == "crashes" and e["spec"]["reason"] == "BackOff"
        ]
        assert backoffs and backoffs[0]["type"] == "Warning"
        assert sum(e.get("count", 1) for e in backoffs) >= 3
        # Nothing serves it meanwhile: the gateway says so, and when to try again.
        refused = gw_admin.post(
            "/v1/chat/completions",
            json={"model": "crashes", "messages": [{"role": "user", "content": "hi"}]},
        )
        assert refused.status_code == 503
        assert int(refused.headers["retry-after"]) >= 1
    finally:
        gw_admin.delete(path)


def test_served_model_name_routes_and_env_reaches_the_engine(
    model_server: RunningServer, gw_admin: httpx.Client
) -> None:
    path = ms_path("default", "renamed")
    mark = [{"name": "HOUSE_MARK", "value": "kept as given"}]
    create_ms(gw_admin, "default", "renamed", replicas=1, servedModelName="house-chat", env=mark)
    try:
        wait_phase(gw_admin, path)
        marks = []
        for pid in engine_pids(model_server):
            environ = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
            marks += [v for v in environ if v.startswith(b"HOUSE_MARK=")]
        assert marks == [b"HOUSE_MARK=kept as given"]
        client = openai_client(model_server, new_key(gw_admin))
        assert "house-chat" in [m.id for m in client.models.list().data]
        reply = client.chat.completions.create(
            model="house-chat", messages=[{"role": "user", "content": "hi"}], max_tokens=2
        )
        assert reply.model == "house-chat" and reply.choices[0].message.content
        for unknown in ("renamed", "default/renamed"):  # its object name does not route
            with pytest.raises(openai.NotFoundError):
                client.chat.completions.create(
                    model=unknown, messages=[{"role": "user", "content": "hi"}], max_tokens=2
                )
    finally:
        gw_admin.delete(path)


def test_a_name_served_in_two_namespaces_is_listed_by_the_names_that_work(
    model_server: RunningServer, gw_admin: httpx.Client
) -> None:
    create_namespace(gw_admin, "twin-models")
    create_ms(gw_admin, "twin-models", "smollm2", model="bundled:smollm2", replicas=0)
    try:
        ids = [m["id"] for m in gw_admin.get("/v1/models").json()["data"]]
        assert "smollm2" not in ids  # the name alone is ambiguous: a request with it fails
        assert {"llmos-public/smollm2", "twin-models/smollm2"} <= set(ids)
        one = gw_admin.get("/v1/models/llmos-public/smollm2").json()
        assert one["id"] == "llmos-public/smollm2"
        for shown in ids:  # each id listed is one a request can send
            assert gw_admin.get(f"/v1/models/{shown}").status_code == 200, shown
        # A key scoped to one of them: its name alone is still ambiguous to a request.
        scoped = new_key(gw_admin, scopes=["llmos-public/smollm2"])
        with model_server.client(scoped) as client:
            listed = [m["id"] for m in client.get("/v1/models").json()["data"]]
            assert listed == ["llmos-public/smollm2"]
            ambiguous = client.post(
                "/v1/chat/completions", json={"model": "smollm2", "messages": []}
            )
            assert ambiguous.json()["error"]["code"] == "ambiguous_model"
            for shown in listed:
                assert client.get(f"/v1/models/{shown}").status_code == 200, shown
        create_user(gw_admin, "twin-viewer", "twin-viewer-password")
        token = model_server.login("twin-viewer", "twin-viewer-password")
        with model_server.client(token) as viewer:  # sees one of them: the plain name
            assert "smollm2" in [m["id"] for m in viewer.get("/v1/models").json()["data"]]
    finally:
        assert gw_admin.delete(ms_path("twin-models", "smollm2")).status_code == 200
