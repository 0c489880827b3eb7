"""Benchmark notebooks: create to usable kernel, and the proxy's download throughput.

Runs a real ``llmos server`` on loopback and measures, side by side in one run:
- create to usable kernel: from POSTing a Notebook to a kernel (started through
  the proxy) answering ``1 + 1`` over its WebSocket; best and median of N;
- the proxy on a 100 MB download: Jupyter's ``/files/`` endpoint fetched
  through ``https://127.0.0.1:PORT/notebooks/...`` (TLS, LLMOS auth, the
  proxy) and directly from the notebook's own loopback port with its secret,
  alternating, as a ratio (proxy / direct) of MB/s; and, in the same rounds,
  the TLS ceiling: the same client downloading as much from a zero-work HTTPS
  server (``bench/https_blob.py``, the server's certificate and HTTP stack),
  what a proxy that cost nothing would reach. The server's CPU per proxied
  download is read from ``/proc``. The client and the notebook run on CPU 0
  and the server in between alone on CPU 1, as BENCHMARKING.md places the
  gateway's bench (``--no-pin``: where the scheduler puts them).

    .venv/bin/python bench/notebooks.py [--runs 3] [--rounds 5] [--megabytes 100] [--json out.json] [--no-pin]
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

import httpx
import psutil

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT / "tests" / "workloads"))
sys.path.insert(0, str(ROOT / "bench" / "gateway"))
from helpers import create, notebook, path, phase_is, volume, wait_for  # noqa: E402
from jupyter import execute, start_kernel  # noqa: E402
from procs import pin_threads, restore_threads  # noqa: E402

from llmos._lib.keys import ServerKey  # noqa: E402
from server import RunningServer, admin_server, free_port  # noqa: E402

TARGETS = {"create_to_kernel_seconds": 5.0, "proxy_download_ratio": 0.7}


def create_to_kernel(server: RunningServer, admin: httpx.Client, name: str) -> float:
    started = time.perf_counter()
    create(admin, "notebooks", "default", notebook(name))
    wait_for(admin, path("notebooks", "default", name), phase_is("Ready"), "Ready", 120)
    base = f"/notebooks/default/{name}/"
    kernel = start_kernel(admin, base)
    reply = execute(
        server.url, base, kernel, server.admin_token, server.ssl_context(), "print(1 + 1)"
    )
    elapsed = time.perf_counter() - started
    assert reply["status"] == "ok" and reply["printed"].strip() == "2", reply
    admin.delete(path("notebooks", "default", name))
    return elapsed


def jupyter_process(server: RunningServer, name: str) -> tuple[int, int]:
    """The notebook's Jupyter process: its PID and its loopback port."""
    for child in psutil.Process(server.pid).children(recursive=True):
        args = child.cmdline()
        if any(a.endswith(f"/{name}/") for a in args):
            for arg in args:
                if arg.startswith("--ServerApp.port="):
                    return child.pid, int(arg.split("=", 1)[1])
    raise RuntimeError(f"no Jupyter process for {name}")


def pinned(placement: dict[int, set[int]]) -> dict[int, set[int]]:
    """Pin each PID's threads to its CPUs; return what puts them back."""
    previous: dict[int, set[int]] = {}
    for pid, cpus in placement.items():
        previous |= pin_threads(pid, cpus)
    return previous


def download(client: httpx.Client, url: str, headers: dict[str, str]) -> float:
    """MB/s of one streamed GET."""
    started = time.perf_counter()
    size = 0
    with client.stream("GET", url, headers=headers) as response:
        response.raise_for_status()
        for chunk in response.iter_raw(1 << 20):
            size += len(chunk)
    return size / (1 << 20) / (time.perf_counter() - started)


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def https_blob(server: RunningServer, megabytes: int) -> tuple[subprocess.Popen[bytes], str]:
    """The zero-work HTTPS server, with the LLMOS server's certificate; and its URL."""
    port, tls = free_port(), server.data_dir / "tls"
    script = ROOT / "bench" / "https_blob.py"
    cert, key = tls / "server.crt", tls / "server.key"
    blob = subprocess.Popen([sys.executable, str(script), str(port), str(megabytes), cert, key])
    url = f"https://127.0.0.1:{port}/"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            httpx.head(url, verify=server.ca)
            return blob, url
        except httpx.TransportError:
            time.sleep(0.1)
    blob.kill()
    raise RuntimeError("bench/https_blob.py did not start")


def proxy_throughput(
    server: RunningServer, admin: httpx.Client, megabytes: int, rounds: int, pin: bool
) -> dict[str, Any]:
    create(admin, "volumes", "default", volume("bench-files", capacity="1Gi"))
    folder = Path(
        wait_for(admin, path("volumes", "default", "bench-files"), phase_is("Bound"), "Bound")[
            "status"
        ]["path"]
    )
    (folder / "big.bin").write_bytes(os.urandom(megabytes << 20))
    create(admin, "notebooks", "default", notebook("bench-dl", volumes=[{"name": "bench-files"}]))
    wait_for(admin, path("notebooks", "default", "bench-dl"), phase_is("Ready"), "Ready", 120)
    base = "/notebooks/default/bench-dl/"
    # The direct path needs the notebook's port and secret, which only the server
    # knows: read the port off the process and derive the secret as the server does.
    jupyter, port = jupyter_process(server, "bench-dl")
    uid = admin.get(path("notebooks", "default", "bench-dl")).json()["metadata"]["uid"]
    secret = ServerKey(server.data_dir / "notebooks" / ".key").derive(uid)
    proxied, direct, ceiling, server_cpu = [], [], [], []
    blob, blob_url = https_blob(server, megabytes)
    # As for the gateway (BENCHMARKING.md): the client and the notebook on CPU 0, whichever
    # server is in between (LLMOS, or the zero-work one) alone on CPU 1.
    placement = {os.getpid(): {0}, jupyter: {0}, server.pid: {1}, blob.pid: {1}} if pin else {}
    previous = pinned(placement)
    try:
        with httpx.Client(timeout=120) as plain:
            for _ in range(rounds):
                before = cpu_seconds(server.pid)
                proxied.append(download(admin, f"{base}files/big.bin", {}))
                server_cpu.append(cpu_seconds(server.pid) - before)
                direct.append(
                    download(
                        plain,
                        f"http://127.0.0.1:{port}{base}files/big.bin",
                        {"Authorization": f"token {secret}"},
                    )
                )
                ceiling.append(download(admin, blob_url, {}))
    finally:
        restore_threads(previous)
        blob.kill()  # uvicorn would wait for the client's kept-alive connection
        blob.wait(10)
    admin.delete(path("notebooks", "default", "bench-dl"))
    proxy_mb, direct_mb = statistics.median(proxied), statistics.median(direct)
    ceiling_mb = statistics.median(ceiling)
    return {
        "megabytes": megabytes,
        "pinned": pin,
        "proxy_mb_per_s": round(proxy_mb, 1),
        "direct_mb_per_s": round(direct_mb, 1),
        "tls_ceiling_mb_per_s": round(ceiling_mb, 1),
        "proxy_download_ratio": round(proxy_mb / direct_mb, 3),
        "tls_ceiling_ratio": round(ceiling_mb / direct_mb, 3),
        "proxy_of_ceiling": round(proxy_mb / ceiling_mb, 3),
        "server_cpu_seconds_per_download": round(statistics.median(server_cpu), 3),
        "proxy_runs": [round(x, 1) for x in proxied],
        "direct_runs": [round(x, 1) for x in direct],
        "tls_ceiling_runs": [round(x, 1) for x in ceiling],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--rounds", type=int, default=5, help="downloads of each kind")
    parser.add_argument("--megabytes", type=int, default=100)
    parser.add_argument("--json", type=Path)
    parser.add_argument(
        "--no-pin",
        dest="pin",
        action="store_false",
        help="leave the downloads' processes unpinned (pinned: client and notebook on CPU 0, "
        "the server on CPU 1)",
    )
    args = parser.parse_args()
    with (
        tempfile.TemporaryDirectory() as tmp,
        admin_server(Path(tmp) / "data", check_exit=False) as server,
        server.admin_client() as admin,
    ):
        times = [create_to_kernel(server, admin, f"bench-{i}") for i in range(args.runs)]
        results: dict[str, Any] = {
            "create_to_kernel_seconds": round(statistics.median(times), 2),
            "create_to_kernel_best": round(min(times), 2),
            "create_to_kernel_runs": [round(t, 2) for t in times],
            **proxy_throughput(
                server, admin, args.megabytes, args.rounds, args.pin and os.cpu_count() != 1
            ),
        }
    for name, target in TARGETS.items():
        value = results[name]
        ok = value <= target if name.endswith("seconds") else value >= target
        results[f"{name}_target"] = f"{'met' if ok else 'MISSED'} ({target})"
    print(json.dumps(results, indent=2))
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
