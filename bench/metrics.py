"""Benchmark /metrics: one scrape with 8 GPUs and 50 workloads, and idle CPU.

1. **One scrape** (in process): the server's real collectors and gateway series
   in one registry: node, 50 workloads (each a real process, `sleep`, watched
   through its /proc entries like a replica), the controllers, 8 GPUs from the
   recorded 8x H100 80GB fixture, and gateway series for 50 models with
   traffic recorded. Times the server's ``Exposition.render`` over many scrapes,
   each in turn with ``prometheus_client.generate_latest`` on the same registry.
2. **Over HTTPS**: ``GET /metrics`` on a real ``llmos server`` started with the
   same GPU fixture, as Prometheus would scrape it (admin token).
3. **Idle overhead**: that server's CPU time over a quiet minute (heartbeats,
   metric history every 10 s with 8 GPUs, no scrapes), as a share of one core.
   It is the whole server, so an upper bound for the metrics part.

``--gpus nvml`` reads this machine's own GPUs through NVML instead of the
fixture (on a real GPU machine: scripts/gpu-check-device.sh runs it on a lent
one), and also times one NVML reading of all GPUs, which the server takes
every 10 s outside any scrape.

    .venv/bin/python bench/metrics.py [--scrapes 200] [--idle-seconds 60] [--gpus fixture|nvml]
                                      [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from prometheus_client import CollectorRegistry, generate_latest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))
from llmos.api.collectors import (  # noqa: E402
    ControllerCollector,
    GPUCollector,
    NodeCollector,
    WorkloadCollector,
)
from llmos.api.exposition import Exposition  # noqa: E402
from llmos.controllers.loop import Manager  # noqa: E402
from llmos.gateway.usage import Usage  # noqa: E402
from llmos.gpu.nvml import NvmlGPUSource  # noqa: E402
from llmos.gpu.source import FixtureGPUSource  # noqa: E402
from llmos.runtime.base import Phase, ReplicaSpec, ReplicaStatus  # noqa: E402
from server import admin_server  # noqa: E402

FIXTURE = ROOT / "tests" / "fixtures" / "gpus" / "h100-80gb-x8.json"
TARGETS = {"scrape_ms_p50": 50.0, "idle_core_percent": 2.0}


class ProcessRuntime:
    """Just enough of a Runtime for the workload collector: keys, statuses and specs
    (each replica holding an 8 GiB share of one of the 8 GPUs)."""

    def __init__(self, pids: dict[str, int]) -> None:
        self.pids = pids

    def keys(self, prefix: str = "") -> list[str]:
        return [k for k in self.pids if k.startswith(prefix)]

    def status(self, key: str) -> ReplicaStatus | None:
        return ReplicaStatus(key, Phase.READY, True, pid=self.pids[key], port=1)

    def spec(self, key: str) -> ReplicaSpec | None:
        gpu = list(self.pids).index(key) % 8
        return ReplicaSpec(key, ("sleep", "600"), gpu_shares=((gpu, 8 * 2**30),))


class Snapshot:
    def __init__(self, source: FixtureGPUSource | NvmlGPUSource) -> None:
        self.snapshot = source.read()


def nvml_reads(reads: int) -> dict[str, Any]:
    """One NVML reading of every GPU on this machine, as the server takes it each 10 s."""
    source = NvmlGPUSource()
    try:
        first = source.read()
        if first.error is not None or not first.gpus:
            raise SystemExit(f"--gpus nvml: NVML reads no GPU here: {first.error or 'none listed'}")
        times = []
        for _ in range(reads):
            started = time.perf_counter()
            source.read()
            times.append((time.perf_counter() - started) * 1000)
        return {
            "gpus": [
                f"{g.info.name} ({g.info.memory_total_bytes // 2**30} GiB)" for g in first.gpus
            ],
            "nvml_read_ms_p50": round(statistics.median(times), 2),
            "nvml_read_ms_max": round(max(times), 2),
        }
    finally:
        source.close()


def one_scrape(scrapes: int, gpus: FixtureGPUSource | NvmlGPUSource) -> dict[str, Any]:
    sleepers = [subprocess.Popen(["sleep", "600"]) for _ in range(50)]
    try:
        registry = CollectorRegistry()
        usage = Usage(registry)
        for i in range(50):
            for code in (200, 200, 200, 429, 503):
                usage.record(f"team/model-{i}", "alice", "key-1", code, 0.2, 20, 40, 0.05)
        pids = {f"modelservices/team/model-{i}/0": p.pid for i, p in enumerate(sleepers)}
        registry.register(NodeCollector(Path(tempfile.gettempdir())))
        registry.register(WorkloadCollector(ProcessRuntime(pids)))  # type: ignore[arg-type]
        registry.register(ControllerCollector(Manager()))
        registry.register(GPUCollector(Snapshot(gpus)))  # type: ignore[arg-type]
        exposition = Exposition(registry)
        exposition.render()  # warm: the line heads are kept after the first
        # The server's Exposition against prometheus_client's generate_latest (what
        # /metrics used before), scrape by scrape in turn on the same registry.
        times: dict[str, list[float]] = {"server": [], "generate_latest": []}
        for _ in range(scrapes):
            for name, render in (
                ("server", exposition.render),
                ("generate_latest", lambda: generate_latest(registry)),
            ):
                started = time.perf_counter()
                body = render()
                times[name].append((time.perf_counter() - started) * 1000)
        for found in times.values():
            found.sort()
        ours, theirs = times["server"], times["generate_latest"]
        return {
            "scrape_ms_p50": round(statistics.median(ours), 2),
            "scrape_ms_p99": round(ours[int(len(ours) * 0.99) - 1], 2),
            "generate_latest_ms_p50": round(statistics.median(theirs), 2),
            "generate_latest_ms_p99": round(theirs[int(len(theirs) * 0.99) - 1], 2),
            "scrape_bytes": len(body),
            "series": sum(1 for line in body.decode().splitlines() if not line.startswith("#")),
        }
    finally:
        for sleeper in sleepers:
            sleeper.kill()
            sleeper.wait()


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def over_https(scrapes: int, idle_seconds: float, server_args: tuple[str, ...]) -> dict[str, Any]:
    with (
        tempfile.TemporaryDirectory() as tmp,
        admin_server(Path(tmp) / "data", *server_args, check_exit=False) as server,
    ):
        with server.admin_client() as admin:
            admin.get("/metrics").raise_for_status()
            times = []
            for _ in range(scrapes):
                started = time.perf_counter()
                admin.get("/metrics").raise_for_status()
                times.append((time.perf_counter() - started) * 1000)
        time.sleep(5)  # let start-up work settle before the quiet minute
        before, started = cpu_seconds(server.pid), time.monotonic()
        time.sleep(idle_seconds)
        used = cpu_seconds(server.pid) - before
        elapsed = time.monotonic() - started
    return {
        "https_scrape_ms_p50": round(statistics.median(times), 2),
        "idle_core_percent": round(100 * used / elapsed, 2),
        "idle_seconds": round(elapsed, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scrapes", type=int, default=200)
    parser.add_argument("--idle-seconds", type=float, default=60.0)
    parser.add_argument(
        "--gpus",
        choices=("fixture", "nvml"),
        default="fixture",
        help="8x H100 80GB recorded (default), or this machine's GPUs",
    )
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    if args.gpus == "nvml":
        results = {**nvml_reads(20), **one_scrape(args.scrapes, NvmlGPUSource())}
        server_args: tuple[str, ...] = ()
    else:
        results = one_scrape(args.scrapes, FixtureGPUSource.from_file(FIXTURE))
        server_args = ("--gpu-fixture", str(FIXTURE))
    results |= over_https(50, args.idle_seconds, server_args)
    for name, target in TARGETS.items():
        results[f"{name}_target"] = f"{'met' if results[name] <= target else 'MISSED'} ({target})"
    print(json.dumps(results, indent=2))
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
