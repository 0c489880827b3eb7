"""Benchmark Ray clusters: MLCluster create to first job accepted.

Runs a real ``llmos server`` on loopback. Each run POSTs an MLCluster (a head
and one worker, one CPU each), then submits a job through the proxied Jobs API
(``JobSubmissionClient`` with an LLMOS token and the LLMOS CA) as soon as the
proxy answers, retrying while the head is not up yet. "Accepted" is the Jobs
API returning a submission id; the times to the head being ready (the proxy
answering) and to the job's success are reported too.
The cluster is deleted between runs and its processes are waited for.

    .venv/bin/python bench/mlclusters.py [--runs 3] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import statistics
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
from helpers import create, path  # noqa: E402

from server import RunningServer, admin_server  # noqa: E402

TARGET_SECONDS = 15.0
JOB = 'python -c "import ray; ray.init(); print(ray.get(ray.remote(lambda: 42).remote()))"'


def cluster(name: str) -> dict[str, Any]:
    return {
        "apiVersion": "ml.llmos.ai/v1",
        "kind": "MLCluster",
        "metadata": {"name": name},
        "spec": {
            "head": {"resources": {"cpu": 1}},
            "workerGroups": [{"name": "cpu", "replicas": 1, "resources": {"cpu": 1}}],
        },
    }


def one_run(server: RunningServer, admin: httpx.Client, name: str) -> dict[str, float]:
    from ray.job_submission import JobStatus, JobSubmissionClient

    token = server.admin_token
    started = time.perf_counter()
    create(admin, "mlclusters", "default", cluster(name))
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
    return {"head_ready": head_ready, "accepted": accepted, "succeeded": finished}


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
        "target": f"{'met' if median <= TARGET_SECONDS else 'MISSED'} ({TARGET_SECONDS} s)",
    }
    print(json.dumps(results, indent=2))
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
