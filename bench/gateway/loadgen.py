"""A closed-loop asyncio load generator for OpenAI chat completions, on aiohttp.

``run.py`` calls :func:`measure` once per cell of its matrix (path x
concurrency x streaming); it also runs alone against any URL:

    uv run python bench/gateway/loadgen.py http://127.0.0.1:18080 --concurrency 32 --stream

Closed loop: ``concurrency`` workers each send a request, wait for the whole
reply, and send the next, so the offered load follows the server's speed and
the result is the server's throughput at that many requests in flight. Every
phase is bounded twice: by a request count and by wall time, and each request
by a timeout, so a run always ends. A warm-up phase on the same session opens
the connections (and, for HTTPS, does the TLS handshakes) before measuring.

Per request it records the latency (send to last byte) and, for streams, the
time to first chunk (send to the first body bytes after the headers). A reply
counts as an error unless it is a 200 and, for a stream, ends with
``data: [DONE]``, or, for JSON, carries ``"choices"``.

aiohttp, not httpx: httpx costs about five times more CPU per request here and
collapses at 256 concurrent requests (``shared/BENCHMARKING.md``).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import ssl
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import orjson

CHAT_PATH = "/v1/chat/completions"
_DONE = b"data: [DONE]"


@dataclass(frozen=True)
class Target:
    """Where requests go and how they authenticate.

    ``base_url`` is the server root (``https://127.0.0.1:8443``), without
    ``/v1``. ``ssl_context`` is built once per target and shared by all its
    connections; ``None`` means plain HTTP.
    """

    name: str
    base_url: str
    model: str
    api_key: str | None = None
    ssl_context: ssl.SSLContext | None = None

    @property
    def url(self) -> str:
        return self.base_url.rstrip("/") + CHAT_PATH


@dataclass(frozen=True)
class Bounds:
    """Stop a phase at whichever comes first: ``requests`` started or ``seconds`` elapsed."""

    requests: int
    seconds: float


@dataclass
class PhaseResult:
    """What one measured phase saw. Times are in milliseconds unless named otherwise."""

    ok: int = 0
    errors: int = 0
    elapsed_s: float = 0.0
    client_cpu_s: float = 0.0
    latencies_ms: list[float] = field(default_factory=list, repr=False)
    ttfc_ms: list[float] = field(default_factory=list, repr=False)
    error_samples: list[str] = field(default_factory=list)

    @property
    def rps(self) -> float:
        """Good replies over the time from the first request to the last reply.

        The proxies are CPU-bound, so they stay busy until the last reply.
        Identical requests sharing one event loop also tend to finish in
        batches (at 256 streams through LiteLLM, a batch takes about 7 s);
        counting to the last reply ends on a batch, where a fixed window would
        cut one in half and read too low.
        """
        return self.ok / self.elapsed_s if self.elapsed_s > 0 else 0.0

    def summary(self) -> dict[str, Any]:
        """The figures ``run.py`` reports and writes to JSON."""
        total = self.ok + self.errors
        return {
            "ok": self.ok,
            "errors": self.errors,
            "elapsed_s": round(self.elapsed_s, 3),
            "rps": round(self.rps, 1),
            "latency_ms": _stats(self.latencies_ms),
            "ttfc_ms": _stats(self.ttfc_ms) if self.ttfc_ms else None,
            "client_cpu_ms_per_request": (
                round(self.client_cpu_s * 1000 / total, 4) if total else None
            ),
            "error_samples": self.error_samples,
        }


def _stats(values: list[float]) -> dict[str, float] | None:
    if not values:
        return None
    ordered = sorted(values)
    n = len(ordered)

    def at(p: float) -> float:  # nearest rank
        return round(ordered[min(n - 1, round(p / 100 * (n - 1)))], 3)

    return {
        "p50": at(50),
        "p90": at(90),
        "p99": at(99),
        "max": round(ordered[-1], 3),
        "mean": round(statistics.fmean(ordered), 3),
    }


def request_body(model: str, stream: bool) -> bytes:
    """A small chat request, encoded once per cell."""
    body: dict[str, Any] = {
        "model": model,
        "messages": [{"role": "user", "content": "Say sixteen tokens."}],
        "max_tokens": 16,
    }
    if stream:
        body["stream"] = True
    return orjson.dumps(body)


def open_session(target: Target, concurrency: int, timeout_s: float) -> aiohttp.ClientSession:
    """One keep-alive session per cell: a pool of exactly ``concurrency`` connections."""
    connector = aiohttp.TCPConnector(
        limit=concurrency,
        limit_per_host=concurrency,
        ssl=target.ssl_context if target.ssl_context is not None else False,
        keepalive_timeout=60,
        enable_cleanup_closed=False,
    )
    headers = {"Content-Type": "application/json"}
    if target.api_key:
        headers["Authorization"] = f"Bearer {target.api_key}"
    return aiohttp.ClientSession(
        connector=connector,
        headers=headers,
        timeout=aiohttp.ClientTimeout(total=timeout_s),
        auto_decompress=False,
        skip_auto_headers=("User-Agent",),
    )


async def _one(
    session: aiohttp.ClientSession, url: str, body: bytes, stream: bool, result: PhaseResult
) -> None:
    started = time.perf_counter()
    first: float | None = None
    try:
        async with session.post(url, data=body) as response:
            if stream:
                tail = b""
                async for chunk in response.content.iter_any():
                    if first is None:
                        first = time.perf_counter()
                    tail = (tail + chunk)[-32:]
                good = response.status == 200 and _DONE in tail
                problem = f"HTTP {response.status}, stream tail {tail[-24:]!r}"
            else:
                payload = await response.read()
                good = response.status == 200 and b'"choices"' in payload
                problem = f"HTTP {response.status}: {payload[:160]!r}"
    except (aiohttp.ClientError, TimeoutError) as exc:
        good = False
        problem = f"{type(exc).__name__}: {exc}"
    finished = time.perf_counter()
    if good:
        result.ok += 1
        result.latencies_ms.append((finished - started) * 1000)
        if first is not None:
            result.ttfc_ms.append((first - started) * 1000)
    else:
        result.errors += 1
        if len(result.error_samples) < 5:
            result.error_samples.append(problem)


async def run_phase(
    session: aiohttp.ClientSession,
    target: Target,
    body: bytes,
    stream: bool,
    concurrency: int,
    bounds: Bounds,
    timeout_s: float,
) -> PhaseResult:
    """Run ``concurrency`` closed-loop workers until ``bounds``; return what they saw.

    ``elapsed_s`` runs from the start to the last reply, so requests still in
    flight at the deadline count, and so does the time they took.
    """
    result = PhaseResult()
    started_count = 0
    url = target.url
    deadline = time.perf_counter() + bounds.seconds

    async def worker() -> None:
        nonlocal started_count
        while started_count < bounds.requests and time.perf_counter() < deadline:
            started_count += 1
            await _one(session, url, body, stream, result)

    cpu0 = time.process_time()
    t0 = time.perf_counter()
    tasks = [asyncio.ensure_future(worker()) for _ in range(concurrency)]
    # A hard stop on top of the per-request timeout: nothing may outlive it.
    done, pending = await asyncio.wait(tasks, timeout=bounds.seconds + timeout_s + 5)
    for task in pending:
        task.cancel()
    if pending:
        await asyncio.gather(*pending, return_exceptions=True)
        result.error_samples.append(f"{len(pending)} workers cancelled at the hard stop")
    result.elapsed_s = time.perf_counter() - t0
    for task in done:
        if (problem := task.exception()) is not None:
            raise problem  # a bug in the generator, not a server error: do not hide it
    result.client_cpu_s = time.process_time() - cpu0
    return result


async def measure(
    target: Target,
    *,
    concurrency: int,
    stream: bool,
    bounds: Bounds,
    warmup: Bounds,
    timeout_s: float = 30.0,
    between: Callable[[], None] | None = None,
) -> PhaseResult:
    """Warm up, then measure one cell on a fresh keep-alive session.

    ``between``, if given, is called (no arguments) after the warm-up and
    again after the measured phase; ``run.py`` uses it to read the proxy's CPU
    time exactly around the measured phase.
    """
    body = request_body(target.model, stream)
    async with open_session(target, concurrency, timeout_s) as session:
        await run_phase(session, target, body, stream, concurrency, warmup, timeout_s)
        if between is not None:
            between()
        result = await run_phase(session, target, body, stream, concurrency, bounds, timeout_s)
        if between is not None:
            between()
    return result


async def check(target: Target, stream: bool, timeout_s: float = 10.0) -> str | None:
    """Send one request; return None if the reply was good, else what was wrong."""
    result = PhaseResult()
    async with open_session(target, 1, timeout_s) as session:
        await _one(session, target.url, request_body(target.model, stream), stream, result)
    return None if result.ok else result.error_samples[0]


def client_ssl_context(cafile: str | None) -> ssl.SSLContext:
    """The one TLS context for an HTTPS target: verifies against ``cafile``, HTTP/1.1."""
    context = ssl.create_default_context(cafile=cafile)
    context.set_alpn_protocols(["http/1.1"])
    return context


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("base_url", help="server root, e.g. http://127.0.0.1:18080")
    parser.add_argument("--model", default="stub-model")
    parser.add_argument("--key", help="sent as 'Authorization: Bearer KEY'")
    parser.add_argument("--ca", help="CA bundle for an https:// URL")
    parser.add_argument("--concurrency", type=int, default=1)
    parser.add_argument("--stream", action="store_true")
    parser.add_argument("--requests", type=int, default=5000)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--warmup-requests", type=int, default=200)
    parser.add_argument("--warmup-seconds", type=float, default=2.0)
    parser.add_argument("--timeout", type=float, default=30.0, help="per request, seconds")
    args = parser.parse_args(argv)

    context = client_ssl_context(args.ca) if args.base_url.startswith("https:") else None
    target = Target("cli", args.base_url, args.model, args.key, context)

    async def go() -> PhaseResult:
        return await measure(
            target,
            concurrency=args.concurrency,
            stream=args.stream,
            bounds=Bounds(args.requests, args.seconds),
            warmup=Bounds(args.warmup_requests, args.warmup_seconds),
            timeout_s=args.timeout,
        )

    import uvloop

    result = uvloop.run(go())
    summary = result.summary()
    print(json.dumps(summary, indent=2))
    return 0 if result.ok and not result.errors else 1


__all__ = ["Bounds", "PhaseResult", "Target", "check", "client_ssl_context", "measure"]

if __name__ == "__main__":
    sys.exit(main())
