"""Benchmark Ray clusters: MLCluster create to first job accepted.

Runs a real ``llmos server`` on loopback. Each run POSTs an MLCluster (a head
and one worker, one CPU each), then submits a job through the proxied Jobs API
(``JobSubmissionClient`` with an LLMOS token and the LLMOS CA) as soon as the
proxy answers, retrying while the head is not up yet. "Accepted" is the Jobs
API returning a submission id; the times to the head being ready (the proxy
answering) and to the job's success are reported too, and a breakdown of
the head's start, polled every 50 ms from outside: the ``ray start`` process
spawned, the GCS port open, the dashboard's HTTP port open (``ray start``
waits for it before it starts the raylet), the head's dashboard agent
answering (what the runtime probes; the Jobs API needs it), and the CPU
seconds the cluster's processes used until the job was accepted.
The cluster is deleted between runs and its processes are waited for.

    .venv/bin/python bench/mlclusters.py [--runs 3] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import socket
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import psutil

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT / "tests" / "workloads"))
from helpers import create, mlcluster, path  # noqa: E402

from server import RunningServer, admin_server  # noqa: E402

TARGET_SECONDS = 15.0
JOB = 'python -c "import ray; ray.init(); print(ray.get(ray.remote(lambda: 42).remote()))"'


def _flag(cmdline: list[str], name: str) -> int:
    return int(next(a.split("=", 1)[1] for a in cmdline if a.startswith(f"--{name}=")))


class HeadWatch(threading.Thread):
    """When each part of the head came up, in seconds from ``started``."""

    def __init__(self, server: RunningServer, started: float) -> None:
        super().__init__(daemon=True)
        self.server, self.started = server, started
        self.marks: dict[str, float] = {}
        self.done = threading.Event()

    def mark(self, what: str) -> None:
        self.marks.setdefault(what, round(time.perf_counter() - self.started, 2))

    def run(self) -> None:
        cmdline: list[str] = []
        while not self.done.wait(0.05):
            if not cmdline:
                for child in psutil.Process(self.server.pid).children(recursive=True):
                    try:
                        with_args = child.cmdline()
                    except psutil.Error:
                        continue
                    wrapper = "llmos.runtime.local.fateshare" in with_args
                    if "--head" in with_args and "start" in with_args and not wrapper:
                        cmdline = with_args
                        self.mark("spawned")
                continue
            node_ip = next(a.split("=", 1)[1] for a in cmdline if a.startswith("--node-ip"))
            for what, host, port in (
                ("gcs", node_ip, _flag(cmdline, "port")),
                ("dashboard", "127.0.0.1", _flag(cmdline, "dashboard-port")),
                ("agent", "127.0.0.1", _flag(cmdline, "dashboard-agent-listen-port")),
            ):
                if what not in self.marks:
                    with socket.socket() as sock:
                        sock.settimeout(0.2)
                        if sock.connect_ex((host, port)) == 0:
                            self.mark(what)


def cpu_seconds(server: RunningServer) -> float:
    """CPU the server's children (the Ray processes) have used, the dead ones' included."""
    total = 0.0
    for child in psutil.Process(server.pid).children(recursive=True):
        try:
            times = child.cpu_times()
        except psutil.Error:
            continue
        total += times.user + times.system + times.children_user + times.children_system
    return total


def one_run(server: RunningServer, admin: httpx.Client, name: str) -> dict[str, Any]:
    from ray.job_submission import JobStatus, JobSubmissionClient

    token = server.admin_token
    started = time.perf_counter()
    watch = HeadWatch(server, started)
    watch.start()
    create(admin, "mlclusters", "default", mlcluster(name))
    dashboard = f"/mlclusters/default/{name}/dashboard/"
    deadline = time.monotonic() + 180
    while True:  # the proxy answers 503 until the head is ready
        assert time.monotonic() < deadline, "the Ray head never came up"
        if admin.get(f"{dashboard}api/version").status_code == 200:
            break
        time.sleep(0.1)
    head_ready = time.perf_counter() - started
    client = JobSubmissionClient(
        server.url + dashboard, headers={"Authorization": f"Bearer {token}"}, verify=server.ca
    )
    job = client.submit_job(entrypoint=JOB)
    accepted = time.perf_counter() - started
    cpu = cpu_seconds(server)
    watch.done.set()
    while (state := client.get_job_status(job)) not in (JobStatus.SUCCEEDED, JobStatus.FAILED):
        assert time.monotonic() < deadline, f"job still {state}"
        time.sleep(0.2)
    finished = time.perf_counter() - started
    assert state == JobStatus.SUCCEEDED, client.get_job_logs(job)
    assert "42" in client.get_job_logs(job)
    # Everything under the server is this cluster's (the bench runs nothing else).
    processes = psutil.Process(server.pid).children(recursive=True)
    admin.delete(path("mlclusters", "default", name))
    psutil.wait_procs(processes, 60)
    breakdown = {**watch.marks, "proxy": round(head_ready, 2), "accepted": round(accepted, 2)}
    return {
        "head_ready": head_ready,
        "accepted": accepted,
        "succeeded": finished,
        "breakdown": breakdown,
        "cpu": round(cpu, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    with (
        tempfile.TemporaryDirectory() as tmp,
        admin_server(Path(tmp) / "data", check_exit=False) as server,
        server.admin_client() as admin,
    ):
        runs = [one_run(server, admin, f"bench-{i}") for i in range(args.runs)]
    accepted = [r["accepted"] for r in runs]
    median = statistics.median(accepted)
    results = {
        "create_to_job_accepted_seconds": round(median, 2),
        "create_to_job_accepted_best": round(min(accepted), 2),
        "create_to_job_accepted_runs": [round(a, 2) for a in accepted],
        "create_to_head_ready_runs": [round(r["head_ready"], 2) for r in runs],
        "create_to_job_succeeded_runs": [round(r["succeeded"], 2) for r in runs],
        "head_start_breakdown_runs": [r["breakdown"] for r in runs],
        "cpu_seconds_until_accepted_runs": [r["cpu"] for r in runs],
        "target": f"{'met' if median <= TARGET_SECONDS else 'MISSED'} ({TARGET_SECONDS} s)",
    }
    print(json.dumps(results, indent=2))
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
