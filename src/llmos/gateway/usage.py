"""Usage accounting and gateway metrics.

Prompt and completion tokens are counted per API key, user and model, from
the ``usage`` the engine reports (or, for a stream without one, from its
content chunks). The same counts, plus request counts by status code,
latency, time to first token and tokens per second, are Prometheus series.
"""

from __future__ import annotations

from dataclasses import dataclass

from prometheus_client import CollectorRegistry, Counter, Histogram

_LATENCY = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120)


@dataclass
class Totals:
    requests: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0


@dataclass
class ModelCounters:
    """Running sums per model, sampled by :class:`llmos.gateway.history.History`."""

    requests: int = 0
    errors: int = 0
    seconds: float = 0.0
    completion_tokens: int = 0
    first_chunk_seconds: float = 0.0
    first_chunks: int = 0


class Usage:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.requests = Counter(
            "llmos_gateway_requests",
            "Gateway requests by model and HTTP status code.",
            ["model", "code"],
            registry=registry,
        )
        self.latency = Histogram(
            "llmos_gateway_request_duration_seconds",
            "Time from request to the last byte of the response.",
            ["model"],
            buckets=_LATENCY,
            registry=registry,
        )
        self.ttft = Histogram(
            "llmos_gateway_time_to_first_token_seconds",
            "Time from request to the first streamed chunk.",
            ["model"],
            buckets=_LATENCY,
            registry=registry,
        )
        self.tokens = Counter(
            "llmos_gateway_tokens",
            "Tokens through the gateway by model, user, API key and kind (prompt/completion).",
            ["model", "user", "key", "type"],
            registry=registry,
        )
        self.tokens_per_second = Histogram(
            "llmos_gateway_output_tokens_per_second",
            "Completion tokens per second of generation, per request.",
            ["model"],
            buckets=(1, 5, 10, 20, 50, 100, 200, 500, 1000),
            registry=registry,
        )
        self.totals: dict[tuple[str, str, str], Totals] = {}
        self.models: dict[str, ModelCounters] = {}

    def record(
        self,
        model: str,
        user: str,
        key: str,
        code: int,
        seconds: float,
        prompt: int,
        completion: int,
        first_chunk: float | None = None,
    ) -> None:
        self.requests.labels(model, str(code)).inc()
        self.latency.labels(model).observe(seconds)
        counters = self.models.get(model)
        if counters is None:
            counters = self.models[model] = ModelCounters()
        counters.requests += 1
        counters.seconds += seconds
        if first_chunk is not None:
            self.ttft.labels(model).observe(first_chunk)
            counters.first_chunk_seconds += first_chunk
            counters.first_chunks += 1
        if code >= 400:
            counters.errors += 1
            return
        counters.completion_tokens += completion
        totals = self.totals.setdefault((user, key, model), Totals())
        totals.requests += 1
        totals.prompt_tokens += prompt
        totals.completion_tokens += completion
        if prompt:
            self.tokens.labels(model, user, key, "prompt").inc(prompt)
        if completion:
            self.tokens.labels(model, user, key, "completion").inc(completion)
            generating = seconds - (first_chunk or 0.0)
            if generating > 0:
                self.tokens_per_second.labels(model).observe(completion / generating)

    def report(self, user: str | None = None) -> list[dict[str, object]]:
        return [
            {
                "user": u,
                "apiKey": k,
                "model": m,
                "requests": t.requests,
                "promptTokens": t.prompt_tokens,
                "completionTokens": t.completion_tokens,
                "totalTokens": t.prompt_tokens + t.completion_tokens,
            }
            for (u, k, m), t in sorted(self.totals.items())
            if user is None or u == user
        ]
