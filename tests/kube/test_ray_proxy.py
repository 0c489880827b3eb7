"""Cluster mode: an MLCluster's Ray dashboard and Jobs API through :8443, on KubeRay's head pod.

KubeRay makes the head pod and kwok "runs" it at a loopback IP without a
container; a real Ray head (``ray start --head``, Ray's token auth on with the
token from the cluster's Secret, as the pod's container would run it) stands in
at that address. A job submitted with Ray's own client to
``https://HOST:8443/mlclusters/NS/NAME/dashboard`` with an LLMOS token runs there.
"""

from __future__ import annotations

import base64
import shutil
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest
from ray.job_submission import JobSubmissionClient

from factories import ML, create_namespace
from kubenodes import KubeNodes, wait_until
from rayjobs import succeeded

from .conftest import KubeServer
from .standin import stand_in

pytestmark = pytest.mark.slow


@contextmanager
def stand_in_head(ip: str, token: str, temp: Path) -> Iterator[None]:
    """A real Ray head at the head pod's address, with the pod's token auth."""
    short = tempfile.mkdtemp(prefix="llmos-ray-")
    env = {
        "PATH": f"{Path(sys.executable).parent}:/usr/bin:/bin",
        "HOME": str(temp),
        "RAY_AUTH_MODE": "token",
        "RAY_AUTH_TOKEN": token,
        "RAY_USAGE_STATS_ENABLED": "0",
    }
    ray = [sys.executable, "-m", "ray.scripts.scripts", "start", "--head", "--block"]
    argv = [
        *[sys.executable, "-m", "llmos.runtime.local.fateshare", "--grace", "8", "--"],
        *ray,
        f"--node-ip-address={ip}",
        "--port=6379",
        f"--dashboard-host={ip}",
        "--dashboard-port=8265",
        "--dashboard-agent-listen-port=52365",
        "--min-worker-port=21000",
        "--max-worker-port=21200",
        "--num-cpus=1",
        # Ray's socket paths must fit in 107 bytes: a short folder, not pytest's.
        f"--temp-dir={short}",
        "--disable-usage-stats",
    ]
    try:
        with stand_in(
            "Ray head",
            argv,
            temp / "ray-head.log",
            f"http://{ip}:8265/api/gcs_healthz",
            env=env,
            grace=30,
        ):
            yield
    finally:
        shutil.rmtree(short, ignore_errors=True)


def test_a_ray_job_runs_through_the_proxy_on_the_head_pod(
    kube_server: KubeServer, kube_server_nodes: KubeNodes, tmp_path: Path
) -> None:
    admin, kube, server = kube_server.admin, kube_server.kube, kube_server.server
    create_namespace(admin, "ray-px")
    body = {
        "apiVersion": "ml.llmos.ai/v1",
        "kind": "MLCluster",
        "metadata": {"name": "jobs"},
        "spec": {"head": {"resources": {"cpu": 1}}},
    }
    assert admin.post(f"{ML}/namespaces/ray-px/mlclusters", json=body).status_code == 201
    path = f"{ML}/namespaces/ray-px/mlclusters/jobs"
    dashboard = "/mlclusters/ray-px/jobs/dashboard/"

    def head_ip() -> str | None:
        status = admin.get(path).json().get("status") or {}
        head = [n for n in status.get("nodes") or [] if n["name"] == "head"]
        return head[0].get("ip") if status.get("phase") == "Ready" and head else None

    ip = wait_until(head_ip, "the MLCluster Ready with its head pod's IP")
    assert admin.get(path).json()["status"]["dashboardUrl"] == dashboard
    secret = kube.get("/api/v1/namespaces/ray-px/secrets/ray-jobs-token").json()
    token = base64.b64decode(secret["data"]["token"]).decode()
    rc = kube.get("/apis/ray.io/v1/namespaces/ray-px/rayclusters/ray-jobs").json()
    (head_container,) = rc["spec"]["headGroupSpec"]["template"]["spec"]["containers"]
    env = {e["name"]: e for e in head_container["env"]}
    assert env["RAY_AUTH_MODE"]["value"] == "token"
    assert env["RAY_AUTH_TOKEN"]["valueFrom"]["secretKeyRef"]["name"] == "ray-jobs-token"

    # Before anything listens at the pod's address the proxy says the head is unreachable.
    down = server.admin_client().get(dashboard + "api/version")
    assert down.status_code in (502, 503), down.text

    with stand_in_head(ip, token, tmp_path):
        direct = f"http://{ip}:8265"
        # Ray's token auth guards the pod's dashboard; its health check (KubeRay's
        # probe) needs no token.
        assert httpx.get(f"{direct}/api/version").status_code == 401
        with server.admin_client() as client:
            version = wait_until(
                lambda: _ok(client.get(dashboard + "api/version")), "the dashboard via :8443", 120
            )
            assert version.json()["ray_version"]
        jobs = JobSubmissionClient(
            server.url + dashboard,
            headers={"Authorization": f"Bearer {server.admin_token}"},
            verify=server.ca,
        )
        job = wait_until(lambda: _submit(jobs), "the Jobs API to accept a job", 120)
        logs = succeeded(jobs, job)
        assert "ANSWER 42" in logs

    # Without the LLMOS token, nothing: the pod's token never leaves the server.
    anonymous = httpx.get(server.url + dashboard + "api/version", verify=server.ssl_context())
    assert anonymous.status_code == 401


def _ok(response: httpx.Response) -> httpx.Response | None:
    return response if response.status_code == 200 else None


def _submit(jobs: JobSubmissionClient) -> str | None:
    try:
        return jobs.submit_job(entrypoint="python -c \"print('ANSWER', 6 * 7)\"")
    except RuntimeError:  # the job agent is still starting
        return None
