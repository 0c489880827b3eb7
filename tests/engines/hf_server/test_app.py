"""The transformers engine's server in-process, on a tiny random Llama built by the test.

Random weights write gibberish: these tests check shapes, counts and the
protocol, never what the text says. Greedy decoding (temperature 0) is
deterministic, so a stream can be compared with the same request unstreamed.
"""

from __future__ import annotations

import base64
import json
import math
import struct
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tiny_model import HIDDEN_SIZE, build_tiny_llama, require_transformers

CHAT = "/v1/chat/completions"
HELLO = [{"role": "user", "content": "say hello"}]


@pytest.fixture(scope="module")
def loaded(tmp_path_factory: pytest.TempPathFactory) -> Any:
    require_transformers()
    from llmos.engines.hf_server.model import LoadedModel

    return LoadedModel.load(str(build_tiny_llama(tmp_path_factory.mktemp("tiny"))))


@pytest.fixture(scope="module")
def client(loaded: Any) -> Iterator[TestClient]:
    from llmos.engines.hf_server.app import create_app

    with TestClient(create_app(loaded, "tiny")) as client:
        yield client


def events(client: TestClient, path: str, body: dict[str, Any]) -> list[Any]:
    """The SSE data of a streamed request, decoded; ``[DONE]`` stays a string."""
    with client.stream("POST", path, json={**body, "stream": True}) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        lines = [line for line in response.iter_lines() if line]
    assert all(line.startswith("data: ") for line in lines)
    return [json.loads(d) if d != "[DONE]" else d for d in (line[6:] for line in lines)]


def test_health_and_models(client: TestClient) -> None:
    assert client.get("/health").status_code == 200
    assert [m["id"] for m in client.get("/v1/models").json()["data"]] == ["tiny"]


def test_chat_returns_text_and_usage(client: TestClient) -> None:
    reply = client.post(
        CHAT, json={"model": "tiny", "messages": HELLO, "max_tokens": 6, "temperature": 0}
    )
    assert reply.status_code == 200, reply.text
    body = reply.json()
    assert body["object"] == "chat.completion" and body["model"] == "tiny"
    [choice] = body["choices"]
    assert choice["message"]["role"] == "assistant" and choice["message"]["content"].strip()
    assert choice["finish_reason"] == "length"
    usage = body["usage"]
    assert usage["completion_tokens"] == 6 and usage["prompt_tokens"] > 0
    assert usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"]


def test_a_stream_is_the_same_text_in_chunks(client: TestClient) -> None:
    request = {"messages": HELLO, "max_tokens": 6, "temperature": 0}
    whole = client.post(CHAT, json=request).json()["choices"][0]["message"]["content"]
    data = events(client, CHAT, {**request, "stream_options": {"include_usage": True}})
    assert data[-1] == "[DONE]"
    chunks, usage_chunk = data[:-2], data[-2]
    assert all(c["object"] == "chat.completion.chunk" for c in chunks)
    assert chunks[0]["choices"][0]["delta"]["role"] == "assistant"
    pieces = [c["choices"][0]["delta"].get("content") for c in chunks[1:-1]]
    assert len(pieces) > 1 and "".join(pieces) == whole
    assert chunks[-1]["choices"][0]["finish_reason"] == "length"
    assert usage_chunk["choices"] == [] and usage_chunk["usage"]["completion_tokens"] == 6
    assert all(c["usage"] is None for c in chunks)
    plain = events(client, CHAT, request)
    assert "usage" not in plain[0] and plain[-1] == "[DONE]"


def test_generation_ends_at_a_stop_string(client: TestClient) -> None:
    request = {"messages": HELLO, "max_tokens": 8, "temperature": 0}
    words = client.post(CHAT, json=request).json()["choices"][0]["message"]["content"].split()
    stop = words[2]
    expected = " ".join(words[: words.index(stop)]) + " "
    reply = client.post(CHAT, json={**request, "stop": [stop, "never-there"]}).json()
    assert reply["choices"][0]["message"]["content"] == expected
    assert reply["choices"][0]["finish_reason"] == "stop"
    streamed = events(
        client, "/v1/completions", {"prompt": "the sky", "max_tokens": 8, "temperature": 0}
    )
    texts = "".join(c["choices"][0]["text"] for c in streamed[:-1])
    assert texts and streamed[-2]["choices"][0]["finish_reason"] == "length"


def test_a_seed_makes_sampling_repeatable(client: TestClient) -> None:
    request = {"messages": HELLO, "max_tokens": 8, "temperature": 1.0, "top_p": 0.9, "seed": 7}
    first, second = (client.post(CHAT, json=request).json() for _ in range(2))
    assert first["choices"][0]["message"] == second["choices"][0]["message"]


def test_completions_take_text_lists_and_token_ids(client: TestClient) -> None:
    reply = client.post("/v1/completions", json={"prompt": ["the sky", "one two"], "max_tokens": 3})
    assert reply.status_code == 200, reply.text
    body = reply.json()
    assert body["object"] == "text_completion"
    assert [c["index"] for c in body["choices"]] == [0, 1]
    assert body["usage"]["completion_tokens"] <= 6
    by_ids = client.post("/v1/completions", json={"prompt": [8, 9, 10], "max_tokens": 2})
    assert by_ids.status_code == 200 and by_ids.json()["usage"]["prompt_tokens"] == 3


def test_embeddings_are_normalized_vectors_of_the_hidden_size(client: TestClient) -> None:
    reply = client.post("/v1/embeddings", json={"input": ["hello", "the sky is blue"]})
    assert reply.status_code == 200, reply.text
    data = reply.json()["data"]
    assert [d["index"] for d in data] == [0, 1]
    for item in data:
        assert len(item["embedding"]) == HIDDEN_SIZE
        assert math.isclose(math.fsum(x * x for x in item["embedding"]), 1.0, rel_tol=1e-4)
    assert data[0]["embedding"] != data[1]["embedding"]
    packed = client.post("/v1/embeddings", json={"input": "hello", "encoding_format": "base64"})
    raw = base64.b64decode(packed.json()["data"][0]["embedding"])
    vector = struct.unpack(f"<{HIDDEN_SIZE}f", raw)
    assert vector == pytest.approx(data[0]["embedding"], rel=1e-6)
    assert packed.json()["usage"]["prompt_tokens"] > 0


@pytest.mark.parametrize(
    ("body", "param", "says"),
    [
        (b'{"messages": [', None, "not valid JSON"),
        (b'{"messages": "hi"}', "messages", "valid list"),
        (b'{"messages": []}', "messages", "at least 1 item"),
        (b'{"messages": [{"role": "robot", "content": "x"}]}', "messages", "role"),
        (
            b'{"messages": [{"role": "user", "content": [{"type": "image_url"}]}]}',
            "messages",
            "'text'",
        ),
        (b'{"messages": [{"role": "user", "content": "x"}], "temperature": 9}', "temperature", "2"),
        (b'{"messages": [{"role": "user", "content": "x"}], "n": 2}', "n", "1"),
        (
            b'{"messages": [{"role": "user", "content": "x"}], "max_tokens": 100000}',
            "max_tokens",
            "context is 256",
        ),
    ],
)
def test_bad_bodies_get_openai_400s(
    client: TestClient, body: bytes, param: str | None, says: str
) -> None:
    response = client.post(CHAT, content=body, headers={"Content-Type": "application/json"})
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert set(error) == {"message", "type", "param", "code"}
    assert error["type"] == "invalid_request_error" and error["param"] == param
    assert says in error["message"]


def test_other_errors_keep_the_openai_shape(
    client: TestClient, loaded: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    wrong = client.post(CHAT, json={"model": "gpt-9", "messages": HELLO})
    assert wrong.status_code == 404 and wrong.json()["error"]["code"] == "model_not_found"
    assert client.get("/v1/nothing").json()["error"]["message"].startswith("GET /v1/nothing")
    empty = client.post("/v1/embeddings", json={"input": []})
    assert empty.status_code == 400 and empty.json()["error"]["param"] == "input"
    monkeypatch.setattr(loaded.tokenizer, "chat_template", None)
    untemplated = client.post(CHAT, json={"messages": HELLO})
    assert (
        untemplated.status_code == 400
        and "no chat template" in untemplated.json()["error"]["message"]
    )


def test_with_a_key_only_health_answers_without_it(loaded: Any) -> None:
    from llmos.engines.hf_server.app import create_app

    with TestClient(create_app(loaded, "tiny", "s3cret")) as keyed:
        assert keyed.get("/health").status_code == 200
        body = {"model": "tiny", "messages": HELLO, "max_tokens": 2}
        for headers in ({}, {"Authorization": "Bearer nope"}, {"Authorization": "s3cret"}):
            refused = keyed.post(CHAT, json=body, headers=headers)
            assert refused.status_code == 401
            assert refused.json()["error"]["code"] == "invalid_api_key"
            assert keyed.get("/v1/models", headers=headers).status_code == 401
        good = {"Authorization": "Bearer s3cret"}
        assert keyed.post(CHAT, json=body, headers=good).status_code == 200
        assert keyed.get("/v1/models", headers=good).status_code == 200
