"""Benchmark the embedded control plane: start-up, idle memory, get/list and watch latency.

Runs a real ``llmos server`` on loopback, as a user would, and measures:
- start to first 200 on /readyz (fresh data dir, then a restart);
- idle RSS of the server process (VmRSS from /proc), before and after 10,000 objects;
- GET and LIST latency with 10,000 ModelServices in one namespace;
- watch event latency: from sending an update to the watcher receiving its event.

    uv run python bench/core.py [--objects 10000] [--json results.json]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import orjson

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
from server import RunningServer, free_port

TARGETS = {
    "idle_rss_mb": 120.0,
    "ready_seconds": 2.0,
    "list_p99_ms": 150.0,
    "watch_p99_ms": 10.0,
}


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS")


def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


def time_to_ready(server: RunningServer) -> float:
    started = time.perf_counter()
    server.start(timeout=60)
    return time.perf_counter() - started


async def populate(server: RunningServer, token: str, count: int) -> float:
    started = time.perf_counter()
    sem = asyncio.Semaphore(32)
    async with httpx.AsyncClient(
        base_url=server.url,
        verify=server.ssl_context(),
        headers={"Authorization": f"Bearer {token}"},
        limits=httpx.Limits(max_connections=32),
        timeout=60,
    ) as client:

        async def one(index: int) -> None:
            body = {
                "apiVersion": "ml.llmos.ai/v1",
                "kind": "ModelService",
                "metadata": {"name": f"m{index:05d}", "labels": {"shard": str(index % 10)}},
                "spec": {"model": "bundled:smollm2", "replicas": 0},
            }
            async with sem:
                response = await client.post(
                    "/apis/ml.llmos.ai/v1/namespaces/bench/modelservices", json=body
                )
                response.raise_for_status()

        await asyncio.gather(*(one(i) for i in range(count)))
    return time.perf_counter() - started


def timed(fn: Any, runs: int) -> list[float]:
    samples = []
    for _ in range(runs):
        started = time.perf_counter()
        fn()
        samples.append((time.perf_counter() - started) * 1000)
    return samples


def watch_latency(server: RunningServer, token: str, updates: int, count: int) -> list[float]:
    path = "/apis/ml.llmos.ai/v1/namespaces/bench/modelservices"
    received: dict[str, float] = {}
    arrived = threading.Condition()
    ready = threading.Event()
    with server.client(token) as client:
        start_rv = client.get(path, params={"limit": "1"}).json()["metadata"]["resourceVersion"]

        def reader() -> None:
            with (
                server.client(token) as watcher,
                watcher.stream(
                    "GET", path, params={"watch": "true", "resourceVersion": start_rv}
                ) as response,
            ):
                ready.set()
                for line in response.iter_lines():
                    if not line:
                        continue
                    event = orjson.loads(line)
                    marker = event["object"]["metadata"]["annotations"].get("bench/seq")
                    if marker:
                        with arrived:
                            received[marker] = time.perf_counter()
                            arrived.notify_all()
                    if len(received) >= updates:
                        return

        thread = threading.Thread(target=reader, daemon=True)
        thread.start()
        ready.wait(10)
        latencies = []
        for seq in range(updates):
            name = f"m{random.randrange(min(1000, count)):05d}"
            patch = {"metadata": {"annotations": {"bench/seq": str(seq)}}}
            sent = time.perf_counter()
            client.patch(
                f"{path}/{name}",
                content=orjson.dumps(patch),
                headers={"Content-Type": "application/merge-patch+json"},
            ).raise_for_status()
            with arrived:
                marker = str(seq)
                arrived.wait_for(lambda marker=marker: marker in received, timeout=5)  # type: ignore[misc]
            latencies.append((received[str(seq)] - sent) * 1000)
        thread.join(5)
    return latencies


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--objects", type=int, default=10_000)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    results: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="llmos-bench-") as tmp:
        server = RunningServer(Path(tmp) / "data", free_port(), [])
        try:
            results["ready_first_start_s"] = time_to_ready(server)
            token = server.setup_admin()
            server.stop()
            results["ready_restart_s"] = time_to_ready(server)
            time.sleep(3)  # let start-up work settle before reading idle memory
            results["idle_rss_mb"] = rss_mb(server.pid)
            token = server.login("admin", "admin-password-123")
            with server.client(token) as client:
                client.post(
                    "/apis/management.llmos.ai/v1/namespaces",
                    json={
                        "apiVersion": "management.llmos.ai/v1",
                        "kind": "Namespace",
                        "metadata": {"name": "bench"},
                    },
                ).raise_for_status()
            seconds = asyncio.run(populate(server, token, args.objects))
            results["create_per_s"] = args.objects / seconds
            path = "/apis/ml.llmos.ai/v1/namespaces/bench/modelservices"
            with server.client(token) as client:
                names = [f"m{random.randrange(args.objects):05d}" for _ in range(300)]
                gets = iter(names)
                get_ms = timed(lambda: client.get(f"{path}/{next(gets)}").raise_for_status(), 300)
                listing = client.get(path).json()
                assert len(listing["items"]) == args.objects, len(listing["items"])
                list_ms = timed(lambda: client.get(path).raise_for_status(), 40)
                page_ms = timed(
                    lambda: client.get(path, params={"limit": "500"}).raise_for_status(), 100
                )
                sel_ms = timed(
                    lambda: client.get(
                        path, params={"labelSelector": "shard=3"}
                    ).raise_for_status(),
                    40,
                )
            results.update(
                get_p50_ms=statistics.median(get_ms),
                get_p99_ms=pct(get_ms, 99),
                list_p50_ms=statistics.median(list_ms),
                list_p99_ms=pct(list_ms, 99),
                list_page500_p99_ms=pct(page_ms, 99),
                list_selector_p99_ms=pct(sel_ms, 99),
                list_bytes=len(orjson.dumps(listing)),
            )
            watch_ms = watch_latency(server, token, 300, args.objects)
            results.update(watch_p50_ms=statistics.median(watch_ms), watch_p99_ms=pct(watch_ms, 99))
            time.sleep(3)
            results["rss_after_objects_mb"] = rss_mb(server.pid)
        finally:
            server.stop()
    results["ready_seconds"] = max(results["ready_first_start_s"], results["ready_restart_s"])
    for key, value in results.items():
        print(f"{key:26} {value:12.2f}")
    missed = [k for k, limit in TARGETS.items() if results[k] > limit]
    for key in missed:
        print(f"MISSED {key}: {results[key]:.2f} > {TARGETS[key]}")
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))
    return 1 if missed else 0


if __name__ == "__main__":
    raise SystemExit(main())
