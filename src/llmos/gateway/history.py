"""Short-term metric history per model for the dashboard's charts.

Every ``interval`` seconds the running counters of :class:`Usage` are turned
into rates over the last interval and appended to a ring buffer per model:
an hour at 10 s resolution by default, bounded in memory whatever the load.
Other readings (each GPU's utilization and memory) are sampled alongside
through a ``sampler``. Long-term history is Prometheus' job: it scrapes
``/metrics``.
"""

from __future__ import annotations

import logging
import time
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace

from llmos._lib.tasks import Periodic
from llmos.gateway.usage import ModelCounters, Usage

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Point:
    time: float  # unix seconds at the end of the interval
    requests_per_second: float
    errors_per_second: float
    tokens_per_second: float
    latency_ms: float | None  # mean over the interval's requests
    ttft_ms: float | None

    def as_dict(self) -> dict[str, float | None]:
        return {
            "time": round(self.time, 3),
            "requestsPerSecond": round(self.requests_per_second, 4),
            "errorsPerSecond": round(self.errors_per_second, 4),
            "tokensPerSecond": round(self.tokens_per_second, 3),
            "latencyMs": None if self.latency_ms is None else round(self.latency_ms, 2),
            "timeToFirstTokenMs": None if self.ttft_ms is None else round(self.ttft_ms, 2),
        }


def _point(now: float, seconds: float, new: ModelCounters, old: ModelCounters) -> Point:
    requests = new.requests - old.requests
    chunks = new.first_chunks - old.first_chunks
    return Point(
        time=now,
        requests_per_second=requests / seconds,
        errors_per_second=(new.errors - old.errors) / seconds,
        tokens_per_second=(new.completion_tokens - old.completion_tokens) / seconds,
        latency_ms=1000 * (new.seconds - old.seconds) / requests if requests else None,
        ttft_ms=(
            1000 * (new.first_chunk_seconds - old.first_chunk_seconds) / chunks if chunks else None
        ),
    )


# Readings of other things (GPUs), sampled with the gateway: name -> {field: value}.
Sampler = Callable[[], Awaitable[dict[str, dict[str, float | None]]]]


class History:
    def __init__(
        self,
        usage: Usage,
        *,
        interval: float = 10.0,
        points: int = 360,
        sampler: Sampler | None = None,
    ) -> None:
        self.usage = usage
        self.interval = interval
        self.points = points
        self.sampler = sampler
        self._series: dict[str, deque[Point]] = {}
        self._readings: dict[str, deque[dict[str, float | None]]] = {}
        self._last: dict[str, ModelCounters] = {}
        self._last_time = time.time()
        self._rounds = Periodic(self._round, interval, "the metric history", log=log)

    def sample(self, now: float | None = None) -> None:
        now = time.time() if now is None else now
        seconds = max(now - self._last_time, 1e-6)
        for model, counters in self.usage.models.items():
            old = self._last.get(model, ModelCounters())
            series = self._series.setdefault(model, deque(maxlen=self.points))
            series.append(_point(now, seconds, counters, old))
            self._last[model] = replace(counters)
        self._last_time = now

    def forget(self, model: str) -> None:
        """A model no longer served: its points go (after :meth:`Usage.forget`)."""
        self._series.pop(model, None)
        self._last.pop(model, None)

    def series(self, model: str) -> list[dict[str, float | None]]:
        return [p.as_dict() for p in self._series.get(model, ())]

    async def sample_readings(self, now: float | None = None) -> None:
        if self.sampler is None:
            return
        now = time.time() if now is None else now
        for name, values in (await self.sampler()).items():
            series = self._readings.setdefault(name, deque(maxlen=self.points))
            series.append({"time": round(now, 3), **values})

    def readings(self, name: str) -> list[dict[str, float | None]]:
        return list(self._readings.get(name, ()))

    async def start(self) -> None:
        await self._rounds.start()

    async def _round(self) -> None:
        self.sample()
        await self.sample_readings()  # a failed GPU reading is logged; the history goes on

    async def stop(self) -> None:
        await self._rounds.stop()
