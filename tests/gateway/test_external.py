"""A ModelService with spec.endpoint routes to an OpenAI server that runs elsewhere."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pytest

from server import RunningServer, free_port
from tlsrecords import RecordClient

from .conftest import new_key

PATH = "/apis/ml.llmos.ai/v1/namespaces/default/modelservices"
_PING = [{"role": "user", "content": "ping"}]


# What the stub answers to a message saying "crash", "busy" or "refuse".
_TRACE = (
    "Traceback (most recent call last):\n"
    '  File "/srv/engine/app.py", line 376, in create_chat_completion\n'
    "    raise KeyError(name)\n"
    "KeyError: 'tokenizer'"
)
_FAILURES: dict[str, tuple[dict[str, object], int]] = {
    "crash": ({"error": {"message": f"cannot load /srv/models/x.gguf\n{_TRACE}"}}, 500),
    "busy": ({"detail": _TRACE}, 503),
    "refuse": (
        {"error": {"message": "context too long", "type": "invalid_request_error", "code": "ctx"}},
        400,
    ),
}


# A stream asked with "hold" sends its first token, then waits for HOLD before the rest;
# HELD says, per such stream, whether the test released it (True) or it gave up waiting.
HOLD = threading.Event()
HELD: list[bool] = []


class Stub(BaseHTTPRequestHandler):
    def log_message(self, *args: object) -> None:
        pass

    def _json(self, body: dict[str, object], status: int = 200) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _stream(self, said: str) -> None:
        """Two tokens, usage, [DONE]; the end of the body only a second later (HTTP/1.0, close)."""
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.end_headers()
        events = [
            {"choices": [{"index": 0, "delta": {"content": "po"}}]},
            {"choices": [{"index": 0, "delta": {"content": "ng"}}]},
            {"choices": [], "usage": {"prompt_tokens": 3, "completion_tokens": 2}},
        ]
        for event in events:
            self.wfile.write(b"data: " + json.dumps(event).encode() + b"\n\n")
            if said == "hold" and event is events[0]:
                self.wfile.flush()
                HELD.append(HOLD.wait(30))
        self.wfile.write(b"data: [DONE]\n\n")
        self.wfile.flush()
        time.sleep(1.0)

    def do_GET(self) -> None:
        self._json({"object": "list", "data": [{"id": "stub", "object": "model"}]})

    def do_POST(self) -> None:
        request = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        said = request["messages"][-1]["content"]
        if request.get("stream"):
            self._stream(said)
            return
        if said in _FAILURES:
            self._json(*_FAILURES[said])
            return
        self._json(
            {
                "object": "chat.completion",
                "model": request["model"],
                "choices": [{"index": 0, "message": {"role": "assistant", "content": "pong"}}],
                "usage": {"prompt_tokens": 3, "completion_tokens": 1, "total_tokens": 4},
            }
        )


@pytest.fixture
def stub_url() -> Iterator[str]:
    httpd = ThreadingHTTPServer(("127.0.0.1", free_port()), Stub)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


def _wait_ready(admin: httpx.Client, name: str, phase: str = "Ready") -> dict[str, object]:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        obj = admin.get(f"{PATH}/{name}").json()
        if (obj.get("status") or {}).get("phase") == phase:
            return obj  # type: ignore[no-any-return]
        time.sleep(0.1)
    raise AssertionError(f"{name} never reached {phase}: {obj.get('status')}")


def test_external_endpoint_is_routed(
    server: RunningServer, admin: httpx.Client, stub_url: str
) -> None:
    body = {
        "apiVersion": "ml.llmos.ai/v1",
        "kind": "ModelService",
        "metadata": {"name": "outside"},
        "spec": {"model": "stub", "endpoint": stub_url},
    }
    assert admin.post(PATH, json=body).status_code == 201
    obj = _wait_ready(admin, "outside")
    assert obj["status"]["endpoints"] == [stub_url]  # type: ignore[index]
    reply = admin.post(
        "/v1/chat/completions",
        json={"model": "outside", "messages": _PING},
    )
    assert reply.status_code == 200, reply.text
    assert reply.json()["choices"][0]["message"]["content"] == "pong"
    assert reply.json()["model"] == "outside"

    # The reply's headers and body leave the gateway as one TLS record (api/corked.py).
    body_bytes = json.dumps({"model": "outside", "messages": _PING}).encode()
    request = (
        b"POST /v1/chat/completions HTTP/1.1\r\nhost: x\r\nauthorization: Bearer "
        + str(server.admin_token).encode()
        + b"\r\ncontent-type: application/json\r\ncontent-length: %d\r\n\r\n" % len(body_bytes)
        + body_bytes
    )
    client = RecordClient(server.port, server.ca)
    try:
        for _ in range(3):
            client.send(request)
            raw = client.receive()
            assert raw.plaintext.startswith(b"HTTP/1.1 200"), raw.plaintext[:300]
            assert b'"pong"' in raw.plaintext
            assert len(raw.records) == 1, raw.records
    finally:
        client.close()


def _usage(admin: httpx.Client, model: str) -> tuple[int, int]:
    items = admin.get("/v1-auth/usage").json()["items"]
    mine = [item for item in items if item["model"].endswith(f"/{model}")]
    return sum(i["promptTokens"] for i in mine), sum(i["completionTokens"] for i in mine)


def test_a_stream_left_after_done_is_counted(
    server: RunningServer, admin: httpx.Client, stub_url: str
) -> None:
    """A client may close as soon as it reads ``data: [DONE]`` (the openai SDK does), before
    the replica ends its body: the reply was whole, so its tokens count and it is no 499."""
    body = {
        "apiVersion": "ml.llmos.ai/v1",
        "kind": "ModelService",
        "metadata": {"name": "left-after-done"},
        "spec": {"model": "stub", "endpoint": stub_url},
    }
    assert admin.post(PATH, json=body).status_code == 201
    _wait_ready(admin, "left-after-done")
    chat = json.dumps({"model": "left-after-done", "messages": _PING, "stream": True}).encode()
    client = RecordClient(server.port, server.ca)
    client.send(
        b"POST /v1/chat/completions HTTP/1.1\r\nhost: x\r\nauthorization: Bearer "
        + str(server.admin_token).encode()
        + b"\r\ncontent-type: application/json\r\ncontent-length: %d\r\n\r\n" % len(chat)
        + chat
    )
    reply = client.receive(lambda plaintext: b"data: [DONE]" in plaintext)
    client.close()
    assert reply.plaintext.startswith(b"HTTP/1.1 200")
    deadline = time.monotonic() + 5
    while _usage(admin, "left-after-done") != (3, 2) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert _usage(admin, "left-after-done") == (3, 2)
    metrics = admin.get("/metrics").text
    assert 'code="499",model="default/left-after-done"' not in metrics
    assert 'code="200",model="default/left-after-done"} 1.0' in metrics


def test_a_stream_is_passed_on_as_it_arrives(
    server: RunningServer, admin: httpx.Client, stub_url: str
) -> None:
    """The first token reaches the client while the replica still holds back the next."""
    _stub_model(admin, "held", stub_url)
    HOLD.clear()
    HELD.clear()
    body = {"model": "held", "messages": [{"role": "user", "content": "hold"}], "stream": True}
    with admin.stream("POST", "/v1/chat/completions", json=body, timeout=10) as reply:
        assert reply.status_code == 200
        lines = (line for line in reply.iter_lines() if line.startswith("data: "))
        first = next(lines)
        assert '"po"' in first, first
        assert HELD == []  # the replica is still waiting to send its second token
        HOLD.set()
        rest = list(lines)
    assert HELD == [True]
    assert '"ng"' in rest[0], rest
    assert rest[-1] == "data: [DONE]"


def _stub_model(admin: httpx.Client, name: str, stub_url: str) -> None:
    body = {"metadata": {"name": name}, "spec": {"model": "stub", "endpoint": stub_url}}
    assert admin.post(PATH, json=body).status_code == 201
    _wait_ready(admin, name)


def test_an_engine_5xx_loses_its_traceback_and_a_4xx_passes_as_it_is(
    server: RunningServer, admin: httpx.Client, stub_url: str
) -> None:
    _stub_model(admin, "failing", stub_url)

    def ask(said: str) -> httpx.Response:
        return admin.post(
            "/v1/chat/completions",
            json={"model": "failing", "messages": [{"role": "user", "content": said}]},
        )

    crash = ask("crash")
    assert crash.status_code == 500
    assert crash.json() == {
        "error": {
            "message": "the model server failed on this request: cannot load <path>",
            "type": "api_error",
            "param": None,
            "code": "engine_error",
        }
    }
    busy = ask("busy")
    assert busy.status_code == 503
    assert busy.json()["error"]["message"] == "the model server failed on this request"
    refused = ask("refuse")
    assert refused.status_code == 400
    assert refused.json() == _FAILURES["refuse"][0], "an engine's 4xx is its own answer"
    assert "/srv/engine/app.py" in server.log(), "the server logs the whole reply"


def test_a_scope_names_a_model_by_its_name_or_namespace_and_name(
    server: RunningServer, admin: httpx.Client, stub_url: str
) -> None:
    _stub_model(admin, "scoped", stub_url)

    def status(key: str, model: str) -> int:
        with server.client(key) as client:
            reply = client.post("/v1/chat/completions", json={"model": model, "messages": _PING})
        return reply.status_code

    def listed(key: str) -> list[str]:
        with server.client(key) as client:
            return [m["id"] for m in client.get("/v1/models").json()["data"]]

    for scope in ("scoped", "default/scoped"):
        key = new_key(admin, scopes=[scope])
        assert listed(key) == ["scoped"], scope
        assert status(key, "scoped") == 200, scope
        assert status(key, "default/scoped") == 200, scope
        # A model that does not exist is not found, whatever the key's scopes.
        assert status(key, "outside-of-scope") == 404
    elsewhere = new_key(admin, scopes=["default/other"])
    assert status(elsewhere, "scoped") == 403
    assert status(elsewhere, "default/scoped") == 403
    assert listed(elsewhere) == []


def test_unreachable_endpoint_is_reported(admin: httpx.Client) -> None:
    dead = f"http://127.0.0.1:{free_port()}"
    body = {
        "apiVersion": "ml.llmos.ai/v1",
        "kind": "ModelService",
        "metadata": {"name": "gone-away"},
        "spec": {"model": "x", "endpoint": dead},
    }
    assert admin.post(PATH, json=body).status_code == 201
    obj = _wait_ready(admin, "gone-away", phase="Unavailable")
    assert "does not answer" in obj["status"]["message"]  # type: ignore[index]
    reply = admin.post("/v1/chat/completions", json={"model": "gone-away", "messages": _PING})
    assert reply.status_code == 503


def test_endpoint_must_be_a_url(admin: httpx.Client) -> None:
    body = {"metadata": {"name": "badurl"}, "spec": {"model": "x", "endpoint": "ftp://x"}}
    response = admin.post(PATH, json=body)
    assert response.status_code == 422
    assert response.json()["details"]["causes"][0]["field"] == "spec.endpoint"
