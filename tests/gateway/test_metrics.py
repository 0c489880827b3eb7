"""Prometheus metrics after real gateway traffic, refusals, and a client that leaves mid-stream."""

from __future__ import annotations

import time

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from server import RunningServer

from .conftest import NEVER_STOP, new_key

pytestmark = pytest.mark.slow


def _samples(admin: httpx.Client) -> dict[str, list[tuple[dict[str, str], float]]]:
    response = admin.get("/metrics")
    assert response.status_code == 200
    found: dict[str, list[tuple[dict[str, str], float]]] = {}
    for family in text_string_to_metric_families(response.text):
        for sample in family.samples:
            found.setdefault(sample.name, []).append((sample.labels, sample.value))
    return found


def _value(
    samples: dict[str, list[tuple[dict[str, str], float]]], metric: str, /, **labels: str
) -> float:
    return sum(
        v for got, v in samples.get(metric, []) if all(got.get(k) == x for k, x in labels.items())
    )


def _session_tokens(admin: httpx.Client) -> int:
    """Tokens of the admin's session (not an API key) in ``/v1-auth/usage``."""
    items = admin.get("/v1-auth/usage").json()["items"]
    return sum(i["totalTokens"] for i in items if i["apiKey"] == "session")


def test_metrics_follow_gateway_traffic(
    model_server: RunningServer, gw_admin: httpx.Client
) -> None:
    before = _samples(gw_admin)
    created = gw_admin.post("/v1-auth/apikeys", json={})
    assert created.status_code == 201, created.text
    key, key_name = created.json()["token"], created.json()["name"]
    with model_server.client(key) as client:
        reply = client.post(
            "/v1/chat/completions",
            json={
                "model": "smollm2",
                "messages": [{"role": "user", "content": "Hi"}],
                "max_tokens": 4,
            },
        ).json()
        client.post("/v1/chat/completions", json={"model": "nope", "messages": []})
    after = _samples(gw_admin)
    model = "llmos-public/smollm2"
    ok = _value(after, "llmos_gateway_requests_total", model=model, code="200")
    assert ok - _value(before, "llmos_gateway_requests_total", model=model, code="200") == 1
    completion = _value(after, "llmos_gateway_tokens_total", model=model, type="completion")
    assert (
        completion - _value(before, "llmos_gateway_tokens_total", model=model, type="completion")
        == reply["usage"]["completion_tokens"]
    )
    assert _value(after, "llmos_gateway_request_duration_seconds_count", model=model) >= 1
    # Tokens are counted per user and API key too: this key's first request is all it has.
    mine = {"model": model, "user": "admin", "key": key_name}
    assert (
        _value(after, "llmos_gateway_tokens_total", **mine, type="completion")
        == (reply["usage"]["completion_tokens"])
    )
    assert (
        _value(after, "llmos_gateway_tokens_total", **mine, type="prompt")
        == (reply["usage"]["prompt_tokens"])
    )


def test_a_stream_counts_its_time_to_first_token_and_rate_and_feeds_the_charts(
    model_server: RunningServer, gw_admin: httpx.Client
) -> None:
    model = "llmos-public/smollm2"
    before = _samples(gw_admin)
    with (
        model_server.client(new_key(gw_admin)) as client,
        client.stream(
            "POST",
            "/v1/chat/completions",
            json={
                "model": "smollm2",
                "messages": [{"role": "user", "content": "Count to ten"}],
                "max_tokens": 8,
                "stream": True,
            },
        ) as reply,
    ):
        assert reply.status_code == 200
        assert b"data: [DONE]" in b"".join(reply.iter_bytes())
    after = _samples(gw_admin)

    def moved(metric: str) -> float:
        return _value(after, metric, model=model) - _value(before, metric, model=model)

    assert moved("llmos_gateway_time_to_first_token_seconds_count") == 1
    assert moved("llmos_gateway_time_to_first_token_seconds_sum") > 0
    assert moved("llmos_gateway_output_tokens_per_second_count") == 1
    assert moved("llmos_gateway_output_tokens_per_second_sum") > 0
    # The dashboard's chart history: a point with the traffic within an interval (10 s).
    url = "/apis/ml.llmos.ai/v1/namespaces/llmos-public/modelservices/smollm2/metrics"
    deadline = time.monotonic() + 30
    while True:
        history = gw_admin.get(url).json()
        busy = [p for p in history["points"] if p["requestsPerSecond"] > 0]
        if busy or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    assert (history["model"], history["intervalSeconds"]) == (model, 10)
    assert busy, history
    assert busy[-1]["tokensPerSecond"] > 0 and busy[-1]["latencyMs"] > 0


def test_every_answer_is_counted_by_code_with_a_bounded_model_label(
    model_server: RunningServer, gw_admin: httpx.Client
) -> None:
    model = "llmos-public/smollm2"
    hi = [{"role": "user", "content": "Hi"}]
    expected = {
        ("200", model): 1,
        ("404", ""): 2,  # an unknown model, twice under two names
        ("400", model): 1,  # a routed request with a wrongly typed field
        ("400", ""): 1,  # not JSON: no model
        ("401", ""): 1,
        ("403", model): 1,
        ("200", ""): 1,  # GET /v1/models
    }
    before = _samples(gw_admin)
    key = new_key(gw_admin)
    scoped = new_key(gw_admin, scopes=["another-model"])
    with model_server.client(key) as client:
        ok = client.post(
            "/v1/chat/completions", json={"model": "smollm2", "messages": hi, "max_tokens": 2}
        )
        assert ok.status_code == 200
        for name in ("no-such-model-1", "no-such-model-2"):
            missing = client.post("/v1/chat/completions", json={"model": name, "messages": hi})
            assert missing.status_code == 404
        malformed = client.post("/v1/chat/completions", json={"model": "smollm2", "messages": "hi"})
        assert malformed.status_code == 400
        not_json = client.post("/v1/chat/completions", content=b"{")
        assert not_json.status_code == 400
        assert client.get("/v1/models").status_code == 200
    with model_server.client("not-a-key") as stranger:
        assert stranger.post("/v1/completions", json={"model": "smollm2"}).status_code == 401
    with model_server.client(scoped) as client:
        refused = client.post("/v1/chat/completions", json={"model": "smollm2", "messages": hi})
        assert refused.status_code == 403
    after = _samples(gw_admin)
    for (code, label), count in expected.items():
        moved = _value(after, "llmos_gateway_requests_total", model=label, code=code) - _value(
            before, "llmos_gateway_requests_total", model=label, code=code
        )
        assert moved == count, (code, label, moved)
    labels = {got["model"] for got, _ in after["llmos_gateway_requests_total"]}
    assert not {"no-such-model-1", "no-such-model-2"} & labels, "never the client's string"


def test_metrics_cover_the_node_workloads_and_controllers(
    model_server: RunningServer, gw_admin: httpx.Client
) -> None:
    samples = _samples(gw_admin)
    replica = {"kind": "ModelService", "namespace": "llmos-public", "name": "smollm2"}
    assert _value(samples, "llmos_workload_up", replica="0", **replica) == 1
    assert _value(samples, "llmos_workload_resident_memory_bytes", **replica) > 50 * 2**20
    assert _value(samples, "llmos_workload_cpu_seconds_total", **replica) > 0
    assert 0 <= _value(samples, "llmos_node_cpu_utilization_ratio") <= 1
    assert (
        0
        < _value(samples, "llmos_node_memory_used_bytes")
        < _value(samples, "llmos_node_memory_total_bytes")
    )
    assert _value(samples, "llmos_node_disk_total_bytes") > 0
    controller = "ModelServiceReconciler"
    assert _value(samples, "llmos_controller_reconciles_total", controller=controller) >= 1
    assert ("llmos_controller_queue_depth" in samples) and (
        "llmos_controller_reconcile_errors_total" in samples
    )
    # Histograms with buckets, as Prometheus expects.
    buckets = samples["llmos_gateway_request_duration_seconds_bucket"]
    assert any(labels.get("le") == "+Inf" for labels, _ in buckets)


def test_metrics_need_an_admin(model_server: RunningServer, gw_admin: httpx.Client) -> None:
    gw_admin.post(
        "/apis/management.llmos.ai/v1/users",
        json={"metadata": {"name": "metrics-peeker"}, "spec": {"password": "peeker-password-1"}},
    ).raise_for_status()
    token = model_server.login("metrics-peeker", "peeker-password-1")
    with model_server.client(token) as client:
        assert client.get("/metrics").status_code == 403
    with model_server.client() as anonymous:
        assert anonymous.get("/metrics").status_code == 401


def _seconds_for(admin: httpx.Client, tokens: int) -> float:
    """How long the model takes to write ``tokens`` tokens (and read a short prompt)."""
    body = {
        "model": "smollm2",
        "messages": [{"role": "user", "content": "Hi"}],
        "max_tokens": tokens,
        "logit_bias": NEVER_STOP,
    }
    started = time.monotonic()
    reply = admin.post("/v1/chat/completions", json=body, timeout=120)
    assert reply.status_code == 200, reply.text
    assert reply.json()["usage"]["completion_tokens"] == tokens
    return time.monotonic() - started


def test_a_client_leaving_mid_stream_cancels_the_request(
    model_server: RunningServer, gw_admin: httpx.Client
) -> None:
    model = "llmos-public/smollm2"
    # llama.cpp's server writes one reply at a time: had the left stream gone on to its
    # max_tokens, the next request would wait about this long for it.
    asked = 3000
    left_unfinished = _seconds_for(gw_admin, 64) * asked / 64
    metrics_before = _samples(gw_admin)
    before = _value(metrics_before, "llmos_gateway_requests_total", code="499")
    sent_before = _value(metrics_before, "llmos_gateway_tokens_total", model=model)
    usage_before = _session_tokens(gw_admin)
    body = {
        "model": "smollm2",
        "messages": [{"role": "user", "content": "Write a long story about the sea."}],
        "max_tokens": asked,
        "logit_bias": NEVER_STOP,
        "stream": True,
    }
    token = model_server.admin_token
    with (
        model_server.client(token) as client,
        client.stream("POST", "/v1/chat/completions", json=body) as response,
    ):
        assert response.status_code == 200
        for line in response.iter_lines():
            if '"content"' in line:
                break  # got the first token: hang up
    left = time.monotonic()
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if _value(_samples(gw_admin), "llmos_gateway_requests_total", code="499") > before:
            break
        time.sleep(0.1)
    metrics_after = _samples(gw_admin)
    assert _value(metrics_after, "llmos_gateway_requests_total", code="499") == before + 1
    # The tokens generated and sent before the client left are counted like a reply's.
    assert _value(metrics_after, "llmos_gateway_tokens_total", model=model) > sent_before
    assert _session_tokens(gw_admin) > usage_before
    # The engine is free again at once, not after the rest of the story.
    _seconds_for(gw_admin, 2)
    waited = time.monotonic() - left
    assert waited < left_unfinished / 3, (waited, left_unfinished)
