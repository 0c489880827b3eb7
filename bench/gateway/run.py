"""Benchmark the OpenAI gateway: direct to a stub upstream, through LLMOS, through LiteLLM.

All paths are measured in one run, side by side, against the same stub
upstream (``stub.py``), by the same closed-loop load generator
(``loadgen.py``), at each concurrency, for JSON and for streamed replies;
then the whole run is repeated (the stub and LiteLLM are restarted). The
proxies' added latency, throughput ratio and CPU per request are printed as
Markdown tables (``report.py``). See ``README.md`` in this folder.

    bench/gateway/setup-litellm.sh       # once: LiteLLM in its own venv
    uv run python bench/gateway/run.py --skip-llmos [--json results.json]
    uv run python bench/gateway/run.py --llmos-url https://127.0.0.1:8443 \\
        --llmos-key KEY --llmos-ca CA.pem --llmos-model NAME --llmos-pid PID

Placement (``shared/BENCHMARKING.md``): this process (the load generator) and
the stub on CPU 0, each proxy alone on CPU 1. LiteLLM is started there with
taskset; an LLMOS gateway given with ``--llmos-pid`` has all its threads
pinned there for the run and put back afterwards.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import signal
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import litellm_proxy
import loadgen
import options
import procs
import report
from loadgen import Bounds, Target
from procs import BenchError, Managed

HERE = Path(__file__).resolve().parent
STUB_MODEL = "stub-model"


@dataclass(frozen=True)
class BenchPath:
    """One way to reach the stub. ``pid`` (read per run) is the proxy whose CPU is counted."""

    name: str
    target: Target
    pid: Callable[[], int | None]


class Bench:
    """Owns the processes of one benchmark and measures the matrix, one run at a time."""

    def __init__(self, args: argparse.Namespace, workdir: Path) -> None:
        self.args = args
        self.workdir = workdir
        self.stub: Managed | None = None
        self.litellm: Managed | None = None
        self.paths = self._paths()

    def _paths(self) -> list[BenchPath]:
        a = self.args
        paths = [
            BenchPath(
                report.DIRECT,
                Target(report.DIRECT, f"http://127.0.0.1:{a.stub_port}", STUB_MODEL),
                lambda: None,
            )
        ]
        if not a.skip_llmos:
            context = loadgen.client_ssl_context(a.llmos_ca)
            target = Target("llmos", a.llmos_url, a.llmos_model, a.llmos_key, context)
            paths.append(BenchPath("llmos", target, lambda: a.llmos_pid))
        if not a.skip_litellm:
            target = Target(
                "litellm",
                f"http://127.0.0.1:{a.litellm_port}",
                STUB_MODEL,
                litellm_proxy.MASTER_KEY,
            )
            paths.append(
                BenchPath("litellm", target, lambda: self.litellm.pid if self.litellm else None)
            )
        return paths

    # -- processes -------------------------------------------------------------

    def start_stub(self, run: int) -> None:
        a = self.args
        procs.ensure_port_free(a.stub_port, "stub")
        self.stub = procs.start(
            "stub upstream",
            [sys.executable, str(HERE / "stub.py"), "--port", str(a.stub_port)],
            log_path=self.workdir / f"stub-{run}.log",
            cpu=a.client_cpu,
        )
        procs.wait_ready(self.stub, f"http://127.0.0.1:{a.stub_port}/health", 30)

    def start_litellm(self, run: int) -> float:
        a = self.args
        self.litellm, ready_s = litellm_proxy.start(
            venv=Path(a.litellm_venv),
            port=a.litellm_port,
            stub_port=a.stub_port,
            model=STUB_MODEL,
            timeout_s=a.timeout,
            cpu=a.proxy_cpu,
            workdir=self.workdir,
            log_name=f"litellm-{run}.log",
        )
        return ready_s

    def stop_all(self) -> None:
        for managed in (self.litellm, self.stub):
            if managed is not None:
                managed.stop()
        self.litellm = self.stub = None

    # -- measuring -------------------------------------------------------------

    async def check_paths(self) -> None:
        """One good JSON and one good streamed reply on every path, or a clear error.

        The LLMOS gateway may still hold connections to the previous run's stub,
        so its first requests may fail; it gets ``--llmos-wait`` seconds.
        """
        for path in self.paths:
            wait_s = self.args.llmos_wait if path.name == "llmos" else 0.0
            for stream in (False, True):
                deadline = time.monotonic() + wait_s
                while (problem := await loadgen.check(path.target, stream)) is not None:
                    if time.monotonic() >= deadline:
                        kind = "streamed" if stream else "JSON"
                        raise BenchError(
                            f"{path.name} at {path.target.url} gave no good {kind} reply: {problem}"
                        )
                    await asyncio.sleep(1)

    async def measure_run(self, run: int) -> list[report.Cell]:
        a = self.args
        cells: list[report.Cell] = []
        stub_pid = self.stub.pid if self.stub else None
        for concurrency in a.concurrency:
            for stream in a.replies:
                for path in self.paths:
                    read_cpu, readings = _cpu_reader(path.pid(), stub_pid)
                    result = await loadgen.measure(
                        path.target,
                        concurrency=concurrency,
                        stream=stream,
                        bounds=Bounds(a.requests, a.seconds),
                        warmup=Bounds(max(a.warmup_requests, 2 * concurrency), a.warmup_seconds),
                        timeout_s=a.timeout,
                        between=read_cpu,
                    )
                    total = result.ok + result.errors
                    (proxy0, stub0), (proxy1, stub1) = readings
                    cell = report.Cell(
                        run=run,
                        path=path.name,
                        concurrency=concurrency,
                        stream=stream,
                        summary=result.summary(),
                        proxy_cpu_ms_per_request=_per_request(proxy0, proxy1, total),
                        stub_cpu_ms_per_request=_per_request(stub0, stub1, total),
                    )
                    cells.append(cell)
                    _progress(cell)
                    await asyncio.sleep(a.pause)
        return cells


def _cpu_reader(
    proxy_pid: int | None, stub_pid: int | None
) -> tuple[Callable[[], None], list[tuple[float | None, float | None]]]:
    """A callback for :func:`loadgen.measure` that records (proxy, stub) CPU seconds."""
    readings: list[tuple[float | None, float | None]] = []

    def read() -> None:
        readings.append(
            (
                procs.cpu_seconds(proxy_pid) if proxy_pid else None,
                procs.cpu_seconds(stub_pid) if stub_pid else None,
            )
        )

    return read, readings


def _per_request(before: float | None, after: float | None, requests: int) -> float | None:
    if before is None or after is None or not requests:
        return None
    return (after - before) * 1000 / requests


def _progress(cell: report.Cell) -> None:
    s = cell.summary
    p50 = s["latency_ms"]["p50"] if s["latency_ms"] else float("nan")
    cpu = cell.proxy_cpu_ms_per_request
    print(
        f"  run {cell.run} c={cell.concurrency:<3} {'stream' if cell.stream else 'json  '} "
        f"{cell.path:<8} {s['ok']:>6} ok {s['errors']:>3} err {s['rps']:>8.0f} req/s "
        f"p50 {p50:8.2f} ms"
        + (f"  proxy CPU {cpu:.3f} ms/req" if cpu is not None else "")
        + (f"  errors: {s['error_samples'][:2]}" if s["errors"] else ""),
        file=sys.stderr,
        flush=True,
    )


def machine() -> dict[str, Any]:
    """What the numbers were measured on, for the report."""
    model = "unknown"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            model = line.split(":", 1)[1].strip()
            break
    mem_kb = next(
        int(line.split()[1])
        for line in Path("/proc/meminfo").read_text().splitlines()
        if line.startswith("MemTotal:")
    )
    return {
        "cpus": os.cpu_count(),
        "cpu_model": model,
        "memory_gib": round(mem_kb / 1024 / 1024, 1),
        "kernel": platform.release(),
        "python": platform.python_version(),
        "aiohttp": metadata.version("aiohttp"),
        "uvicorn": metadata.version("uvicorn"),
        "uvloop": metadata.version("uvloop"),
    }


async def run(args: argparse.Namespace) -> int:
    current = asyncio.current_task()
    if current is not None:
        asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, current.cancel)
    meta: dict[str, Any] = {
        "command": " ".join(sys.argv),
        "started_utc": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": machine(),
        "litellm": None if args.skip_litellm else litellm_proxy.version(Path(args.litellm_venv)),
        "placement": {"client_and_stub_cpu": args.client_cpu, "proxy_cpu": args.proxy_cpu},
        "bounds": {
            "requests": args.requests,
            "seconds": args.seconds,
            "warmup_requests": args.warmup_requests,
            "warmup_seconds": args.warmup_seconds,
            "timeout_s": args.timeout,
        },
        "startup_s": [],
    }
    pinned: dict[int, set[int]] = {}
    if not args.skip_llmos and args.llmos_pid and not args.no_pin_llmos:
        pinned = procs.pin_threads(args.llmos_pid, {args.proxy_cpu})
    cells: list[report.Cell] = []
    with tempfile.TemporaryDirectory(prefix="llmos-bench-gateway-") as tmp:
        bench = Bench(args, Path(tmp))
        print(f"paths: {', '.join(p.name for p in bench.paths)}", file=sys.stderr)
        try:
            for run_number in range(1, args.repeats + 1):
                bench.start_stub(run_number)
                if not args.skip_litellm:
                    started = bench.start_litellm(run_number)
                    meta["startup_s"].append(round(started, 2))
                    print(f"run {run_number}: LiteLLM ready in {started:.1f} s", file=sys.stderr)
                await bench.check_paths()
                cells += await bench.measure_run(run_number)
                bench.stop_all()
        finally:
            bench.stop_all()
            procs.restore_threads(pinned)

    runs = sorted({cell.run for cell in cells})
    tables = {f"run {r}": report.run_table(cells, r) for r in runs}
    tables["summary"] = report.summary_table(cells)
    print(render(meta, tables, args))
    if args.json:
        args.json.write_text(
            json.dumps({"meta": meta, "cells": report.to_json(cells), "tables": tables}, indent=2)
            + "\n"
        )
    return 1 if any(cell.summary["errors"] for cell in cells) else 0


def render(meta: dict[str, Any], tables: dict[str, str], args: argparse.Namespace) -> str:
    m = meta["machine"]
    lines = [
        "## Gateway overhead",
        "",
        f"Command: `{meta['command']}`",
        "",
        f"Machine: {m['cpus']} CPUs ({m['cpu_model']}), {m['memory_gib']} GiB, Linux "
        f"{m['kernel']}, Python {m['python']}, aiohttp {m['aiohttp']}, uvicorn {m['uvicorn']}; "
        f"LiteLLM {meta['litellm'] or 'not run'}. Load generator and stub on CPU "
        f"{args.client_cpu}, proxy on CPU {args.proxy_cpu}. Per cell: at most "
        f"{args.requests} requests or {args.seconds:g} s after a warm-up.",
        "",
        "Added latency is the proxy's p50/p99 minus direct's in the same run; "
        "`vs direct` is req/s over direct's req/s; CPU is the proxy process's "
        "user+system time per request. Each cell shows every run: `run 1 / run 2`.",
        "",
        tables["summary"],
    ]
    if not args.skip_llmos:
        lines += [
            "",
            "Caveat: LLMOS is measured over HTTPS (its only listener), direct and LiteLLM over "
            "plain HTTP as they run by default, so LLMOS's figures include TLS on both ends.",
        ]
    for name, table in tables.items():
        if name != "summary":
            lines += ["", f"### {name.capitalize()}", "", table]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    args = options.parse(argv, __doc__)
    # The load generator runs in this process; the stub is started on the same CPU.
    os.sched_setaffinity(0, {args.client_cpu})
    import uvloop

    try:
        return uvloop.run(run(args))
    except BenchError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except (KeyboardInterrupt, asyncio.CancelledError):
        print("interrupted; every started process was stopped", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
