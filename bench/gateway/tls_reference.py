"""What HTTPS alone costs the load generator, on the gateway benchmark's placement.

In ``run.py`` the LLMOS path is HTTPS (its only listener) and the direct path
plain HTTP, and the load generator shares CPU 0 with the stub. So every
request through LLMOS costs CPU 0 the client's side of TLS on top of what a
direct request costs, whatever the gateway does on CPU 1. This script
measures that share: the same stub, pinned to CPU 0 with the load generator,
once over HTTP and once over HTTPS (the server's own kind of certificate).

    .venv/bin/python bench/gateway/tls_reference.py [--seconds 10] [--repeats 2]

It prints, per reply kind at concurrency 32, the client's CPU per request
over HTTP and over HTTPS, and the ceiling this puts on a proxied HTTPS path:
``(client_http + stub_http) / (client_https + stub_http)``, the most req/s a
proxy that cost nothing could reach over direct's, with CPU 0 saturated. (The
HTTPS stub also pays for TLS itself, on CPU 0, which a proxied path does not:
read its req/s as a lower bound, not as the ceiling.)
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

import uvloop

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import loadgen  # noqa: E402
import procs  # noqa: E402

from llmos._lib.tls import ensure_certificates  # noqa: E402


def _measure(
    target: loadgen.Target, pid: int, stream: bool, seconds: float
) -> tuple[float, float, float]:
    """req/s, client CPU ms/req and stub CPU ms/req for one cell at concurrency 32."""
    marks: list[float] = []
    result = uvloop.run(
        loadgen.measure(
            target,
            concurrency=32,
            stream=stream,
            bounds=loadgen.Bounds(5000, seconds),
            warmup=loadgen.Bounds(200, 2.0),
            between=lambda: marks.append(procs.cpu_seconds(pid)),
        )
    )
    summary = result.summary()
    return (
        summary["rps"],
        summary["client_cpu_ms_per_request"],
        (marks[1] - marks[0]) * 1000 / max(result.ok, 1),
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=10.0, help="per cell, at most")
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--cpu", type=int, default=0, help="the load generator and stub core")
    parser.add_argument("--port", type=int, default=18090, help="HTTP; HTTPS is the next one")
    args = parser.parse_args()
    os.sched_setaffinity(0, {args.cpu})
    with tempfile.TemporaryDirectory(prefix="llmos-tls-ref-") as tmp:
        work = Path(tmp)
        tls = ensure_certificates(work / "tls", ["127.0.0.1"])
        stub = [sys.executable, str(HERE / "stub.py")]
        plain_port, tls_port = args.port, args.port + 1
        for port in (plain_port, tls_port):
            procs.ensure_port_free(port, "stub")
        plain = procs.start(
            "stub (HTTP)",
            [*stub, "--port", str(plain_port)],
            log_path=work / "plain.log",
            cpu=args.cpu,
        )
        secure = procs.start(
            "stub (HTTPS)",
            [
                *stub,
                "--port",
                str(tls_port),
                "--tls-cert",
                str(tls.cert),
                "--tls-key",
                str(tls.key),
            ],
            log_path=work / "tls.log",
            cpu=args.cpu,
        )
        try:
            context = loadgen.client_ssl_context(str(tls.ca_cert))
            procs.wait_ready(plain, f"http://127.0.0.1:{plain_port}/health", 30)
            procs.wait_ready(secure, f"https://127.0.0.1:{tls_port}/health", 30, context)
            http = loadgen.Target("http", f"http://127.0.0.1:{plain_port}", "stub-model")
            https = loadgen.Target(
                "https", f"https://127.0.0.1:{tls_port}", "stub-model", None, context
            )
            print(
                "| run | reply | req/s HTTP | req/s HTTPS | client CPU ms/req HTTP | HTTPS | stub CPU ms/req HTTP | HTTPS | ceiling for a proxied HTTPS path |"
            )
            print("|---:|---|---:|---:|---:|---:|---:|---:|---:|")
            for run in range(1, args.repeats + 1):
                for stream in (False, True):
                    rps, client, stub_cpu = _measure(http, plain.pid, stream, args.seconds)
                    rps_s, client_s, stub_s = _measure(https, secure.pid, stream, args.seconds)
                    ceiling = (client + stub_cpu) / (client_s + stub_cpu)
                    print(
                        f"| {run} | {'stream' if stream else 'json'} | {rps:.0f} | {rps_s:.0f} "
                        f"| {client:.3f} | {client_s:.3f} | {stub_cpu:.3f} | {stub_s:.3f} "
                        f"| {ceiling:.2f} |",
                        flush=True,
                    )
        finally:
            plain.stop()
            secure.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
