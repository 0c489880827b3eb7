"""Usage accounting and gateway metrics.

Prompt and completion tokens are counted per API key, user and model, from
the ``usage`` the engine reports (or, for a stream without one, from its
content chunks); also those of a stream the client left (499), which were
generated and sent. The same counts, plus request counts by status code,
latency, time to first token and tokens per second, are Prometheus series.
Requests the gateway refuses itself count by status code only (:meth:`Usage.answered`).

The per-key totals (``GET /v1-auth/usage``) are accounting: given a ``ledger`` file,
they are read from it at start and written to it (whole, atomically) by :meth:`Usage.save`,
which the server calls every ``--metrics-interval`` and when it stops. A kill -9 loses at
most the last interval's counts. Prometheus series start again at zero after a restart, as
Prometheus expects of counters.
"""

from __future__ import annotations

import asyncio
import logging
import os
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
from prometheus_client import CollectorRegistry, Counter, Histogram, disable_created_metrics

# No ``*_created`` series beside each counter and histogram (one per model and code, per
# model, user and key): each is one more series to store for a timestamp that dashboards
# seldom use, and they were an eighth of a scrape's lines. Process-wide, and only for
# metrics made after this call.
disable_created_metrics()  # type: ignore[no-untyped-call]

log = logging.getLogger(__name__)

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


@dataclass
class _Series:
    """One model's metric children, each looked up once: ``labels()`` is slow on the hot path."""

    counters: ModelCounters
    latency: Any
    ttft: Any = None
    tokens_per_second: Any = None


class Usage:
    def __init__(self, registry: CollectorRegistry, ledger: Path | None = None) -> None:
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
        self._series: dict[str, _Series] = {}
        self._tokens: dict[tuple[str, str, str, str], Any] = {}
        self._requests: dict[tuple[str, int], Any] = {}  # (model, code) -> its child
        self.ledger = ledger
        # Models no longer served (forget): a request still in flight then must not bring
        # their series back; served() takes a name off when it is served again.
        self._gone: set[str] = set()
        self._changes = self._saved = 0
        self._writing = threading.Lock()
        if ledger is not None:
            self._load(ledger)

    def _load(self, ledger: Path) -> None:
        try:
            rows = orjson.loads(ledger.read_bytes())["items"]
            totals = {
                (str(r["user"]), str(r["apiKey"]), str(r["model"])): Totals(
                    int(r["requests"]), int(r["promptTokens"]), int(r["completionTokens"])
                )
                for r in rows
            }
        except FileNotFoundError:
            return
        except (OSError, ValueError, KeyError, TypeError) as exc:
            aside = ledger.with_name(ledger.name + ".unreadable")
            log.error(
                "usage ledger %s is unreadable (%s): counting from zero; the file is kept as %s",
                ledger,
                exc,
                aside,
            )
            try:
                ledger.replace(aside)
            except OSError as moved:
                log.error("could not move %s aside: %s", ledger, moved)
            return
        self.totals.update(totals)

    async def keep_saved(self, interval: float) -> None:
        """Save the ledger every ``interval`` seconds (written off the event loop) until
        cancelled."""
        while True:
            await asyncio.sleep(interval)
            body = self._unsaved()
            if body is None:
                continue
            try:
                await asyncio.to_thread(self._write, *body)
            except OSError as exc:  # a full disk must not end the gateway
                log.error("could not save the usage ledger %s: %s", self.ledger, exc)

    def save(self) -> bool:
        """Write the per-key totals to the ledger now, if they changed since the last save."""
        body = self._unsaved()
        if body is None:
            return False
        self._write(*body)
        return True

    def _unsaved(self) -> tuple[bytes, int] | None:
        """The ledger's text and the change it counts up to; None when it is saved already.
        Taken on the event loop, which alone changes the totals."""
        if self.ledger is None or self._changes == self._saved:
            return None
        return orjson.dumps({"items": self.report()}, option=orjson.OPT_INDENT_2), self._changes

    def _write(self, body: bytes, changes: int) -> None:
        assert self.ledger is not None
        with self._writing:  # a last save at shutdown may meet a periodic one in its thread
            if changes <= self._saved:
                return
            part = self.ledger.with_name(self.ledger.name + ".part")
            with open(part, "wb") as file:
                file.write(body)
                file.flush()
                os.fsync(file.fileno())
            part.replace(self.ledger)
            self._saved = changes

    def _model_series(self, model: str) -> _Series:
        series = self._series.get(model)
        if series is None:
            counters = self.models.setdefault(model, ModelCounters())
            series = self._series[model] = _Series(counters, self.latency.labels(model))
        return series

    def _count_tokens(self, model: str, user: str, key: str, kind: str, amount: int) -> None:
        labels = (model, user, key, kind)
        child = self._tokens.get(labels)
        if child is None:
            child = self._tokens[labels] = self.tokens.labels(*labels)
        child.inc(amount)

    def answered(self, model: str, code: int) -> None:
        """Count a request the gateway answered itself, without a replica.

        ``model`` is a route's qualified name, or ``""`` for a request not (yet)
        routed: never the client's own string, which would make series without end.
        """
        self._count_request(model, code)

    def _count_request(self, model: str, code: int) -> None:
        child = self._requests.get((model, code))
        if child is None:
            child = self._requests[model, code] = self.requests.labels(model, str(code))
        child.inc()

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
        if model in self._gone:  # finished after its model went: accounting only
            if code < 400 or code == 499:
                self._account(user, key, model, prompt, completion)
            return
        series = self._model_series(model)
        self._count_request(model, code)
        series.latency.observe(seconds)
        counters = series.counters
        counters.requests += 1
        counters.seconds += seconds
        if first_chunk is not None:
            if series.ttft is None:
                series.ttft = self.ttft.labels(model)
            series.ttft.observe(first_chunk)
            counters.first_chunk_seconds += first_chunk
            counters.first_chunks += 1
        if code >= 400:
            counters.errors += 1
            if code != 499:
                return  # an error answers no tokens; a client that left had them sent
        counters.completion_tokens += completion
        self._account(user, key, model, prompt, completion)
        if prompt:
            self._count_tokens(model, user, key, "prompt", prompt)
        if completion:
            self._count_tokens(model, user, key, "completion", completion)
            generating = seconds - (first_chunk or 0.0)
            if generating > 0:
                if series.tokens_per_second is None:
                    series.tokens_per_second = self.tokens_per_second.labels(model)
                series.tokens_per_second.observe(completion / generating)

    def served(self, model: str) -> None:
        """``model`` is served (again): count it."""
        self._gone.discard(model)

    def forget(self, model: str) -> None:
        """Drop the Prometheus series and running sums of a model no longer served; the
        per-key totals (:meth:`report`) stay, as accounting."""
        self._gone.add(model)
        self.models.pop(model, None)
        series = self._series.pop(model, None)
        if series is not None:
            for metric, child in (
                (self.latency, series.latency),
                (self.ttft, series.ttft),
                (self.tokens_per_second, series.tokens_per_second),
            ):
                if child is not None:
                    metric.remove(model)
        for model_, code in [k for k in self._requests if k[0] == model]:
            del self._requests[model_, code]
            self.requests.remove(model, str(code))
        for labels in [k for k in self._tokens if k[0] == model]:
            del self._tokens[labels]
            self.tokens.remove(*labels)

    def _account(self, user: str, key: str, model: str, prompt: int, completion: int) -> None:
        who = (user, key, model)
        totals = self.totals.get(who)
        if totals is None:
            totals = self.totals[who] = Totals()
        totals.requests += 1
        totals.prompt_tokens += prompt
        totals.completion_tokens += completion
        self._changes += 1

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
