"""Ray clusters (MLCluster) with real Ray processes: a job through the proxied Jobs API,
scaling and idle scale-down, RBAC on the dashboard path, and no orphans after a kill -9.

Ray is heavy on a small machine, so each test runs one small cluster and deletes it.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import psutil
import pytest
from helpers import condition, create, mlcluster, path, phase_is, volume, wait_for

from cli.runner import CLI
from factories import bind, create_namespace, create_user, unique
from llmos.runtime.local.cgroups import cgroup_dirs
from processes import argv_of, descendants
from rayjobs import succeeded
from server import ADMIN_PASSWORD, RunningServer, start_server

pytest.importorskip("ray", reason="the ray extra is not installed (scripts/setup --dev)")

from ray.job_submission import JobSubmissionClient

pytestmark = pytest.mark.slow

EVENTS = "/apis/node.llmos.ai/v1/namespaces/{}/events"
RAY_TEMP = Path(tempfile.gettempdir()) / f"llmos-ray-{os.getuid()}"


def ray_processes(server: RunningServer) -> list[psutil.Process]:
    """Every process under the server that belongs to a Ray node (wrapper included)."""
    return [
        child
        for child, argv in descendants(server.pid)
        if any(word in " ".join(argv) for word in ("ray", "raylet", "gcs_server"))
    ]


def delete_and_wait(server: RunningServer, client: httpx.Client, url: str) -> None:
    """Delete an MLCluster and wait until its processes (and Ray's temp dir) are gone."""
    processes = ray_processes(server)
    assert client.delete(url).status_code == 200
    _gone, alive = psutil.wait_procs(processes, 30)
    assert alive == [], [p.pid for p in alive]
    parts = url.split("/")
    temp = ray_temp(server, parts[-3], parts[-1])
    deadline = time.monotonic() + 10
    while temp.exists():
        assert time.monotonic() < deadline, f"{temp} is still there"
        time.sleep(0.1)


def node_logs(server: RunningServer, namespace: str, name: str) -> list[str]:
    """The log files of the cluster's nodes, each named by what follows the cluster's name."""
    start = f"mlclusters_{namespace}_{name}_"
    logs = server.data_dir / "logs"
    return sorted(p.name.removeprefix(start) for p in logs.iterdir() if p.name.startswith(start))


def ray_temp(server: RunningServer, namespace: str, name: str) -> Path:
    where = f"{server.data_dir}:{namespace}/{name}".encode()
    return RAY_TEMP / hashlib.sha256(where).hexdigest()[:12]


def events_of(client: httpx.Client, namespace: str, name: str) -> list[dict[str, Any]]:
    items = client.get(EVENTS.format(namespace)).json()["items"]
    return [e["spec"] for e in items if e["spec"]["involvedObject"]["name"] == name]


def cpus(obj: dict[str, Any]) -> float:
    return float((obj.get("status") or {}).get("totalResources", {}).get("CPU", 0))


@pytest.fixture(scope="module")
def team(server: RunningServer) -> Iterator[str]:
    with server.client(server.admin_token) as admin:  # type: ignore[attr-defined]
        namespace = unique("rayteam")
        create_namespace(admin, namespace)
        yield namespace
        admin.delete(f"/apis/management.llmos.ai/v1/namespaces/{namespace}")


def test_a_ray_job_runs_through_the_proxy_and_workers_scale(
    server: RunningServer, admin: httpx.Client, team: str
) -> None:
    vol, name = unique("data"), unique("ray")
    create(admin, "volumes", team, volume(vol))
    folder = Path(
        wait_for(admin, path("volumes", team, vol), phase_is("Bound"), "Bound")["status"]["path"]
    )
    create(admin, "mlclusters", team, mlcluster(name, volumes=[{"name": vol}]))
    url = path("mlclusters", team, name)
    ready = wait_for(admin, url, phase_is("Ready"), "Ready", 180)
    dashboard = f"/mlclusters/{team}/{name}/dashboard/"
    assert ready["status"]["dashboardUrl"] == dashboard
    assert ready["status"]["workingDir"] == str(folder)
    assert [n["name"] for n in ready["status"]["nodes"]] == ["head", "cpu-0"]
    assert condition(ready, "Isolated")["status"] == "True", ready["status"]
    ips_of = {n["name"]: n["ip"] for n in ready["status"]["nodes"]}
    # Each Ray node's log, the head's by default: `ray start` names the node's own IP.
    for node, params in (("head", {}), ("cpu-0", {"node": "cpu-0"})):
        logged = admin.get(f"{url}/logs", params=params)
        assert logged.status_code == 200, logged.text
        assert "Local node IP" in logged.text and ips_of[node] in logged.text, logged.text
    unknown = admin.get(f"{url}/logs", params={"node": "gpu-7"})
    assert unknown.status_code == 404
    assert "no Ray node 'gpu-7'" in unknown.json()["message"]
    assert "(its nodes now: cpu-0, head)" in unknown.json()["message"]
    assert admin.get(f"{url}/logs", params={"node": "../x"}).status_code == 400
    ips = set(ips_of.values())
    assert len(ips) == 2 and all(ip.startswith("127.0.0.") for ip in ips)
    wait_for(admin, url, lambda o: cpus(o) == 2.0, "2 CPUs in totalResources", 60)
    # Each node's processes, Ray's daemons too (they leave its session), are in its cgroup.
    prefix = f"mlclusters_{team}_{name}_"
    in_groups = [
        folder.name
        for process in ray_processes(server)
        for controllers, folder in cgroup_dirs(process.pid)
        if "cpu" in controllers or not controllers
    ]
    ours = [group for group in in_groups if group.startswith(prefix)]
    assert set(ours) == {prefix + "head", prefix + "cpu-0"} and len(ours) > 5, in_groups
    # Ready means jobs can be submitted: the head's Jobs API was warmed up before that, its
    # agent has connected to Ray (else Ray answers a 500, "No available agent to submit job").
    agent_log = ray_temp(server, team, name) / "session_latest" / "logs" / "dashboard_agent.log"
    assert "Connecting to ray with address" in agent_log.read_text()

    # A real job through the proxied Jobs API, with an LLMOS token and the LLMOS CA.
    jobs = JobSubmissionClient(
        server.url + dashboard,
        headers={"Authorization": f"Bearer {server.admin_token}"},  # type: ignore[attr-defined]
        verify=server.ca,
    )
    script = (
        "import os, ray\n"
        "ray.init()\n"
        "@ray.remote(num_cpus=1)\n"
        "def square(x):\n"
        "    return x * x\n"
        "total = sum(ray.get([square.remote(i) for i in range(10)]))\n"
        "open('result.txt', 'w').write(str(total))\n"
        "print('RESULT', total, os.environ['LLMOS_VOLUME_' + os.environ['VOL']])\n"
        # The job runs in the sandbox: of the data dir it sees only its cluster's folders.
        f"print('DATA', sorted(os.listdir({str(server.data_dir)!r})))\n"
    )
    job = jobs.submit_job(
        entrypoint=f"python -c {_quote(script)}",
        runtime_env={"env_vars": {"VOL": vol.upper().replace("-", "_")}},
    )
    logs = succeeded(jobs, job)
    assert f"RESULT 285 {folder}" in logs
    assert "DATA ['mlclusters', 'volumes']" in logs, logs
    assert (folder / "result.txt").read_text() == "285"  # the job ran in the volume

    # Scale the workers: status follows.
    merge = {"Content-Type": "application/merge-patch+json"}
    groups = [{"name": "cpu", "replicas": 2, "resources": {"cpu": "500m"}}]
    assert admin.patch(url, json={"spec": {"workerGroups": groups}}, headers=merge).is_success
    scaled = wait_for(
        admin,
        url,
        lambda o: (
            phase_is("Ready")(o)
            and o["status"]["workerGroups"]
            == [{"name": "cpu", "desiredReplicas": 2, "readyReplicas": 2}]
            and cpus(o) == 3.0
        ),
        "2 ready workers and 3 CPUs",
        180,
    )
    assert [n["name"] for n in scaled["status"]["nodes"]] == ["head", "cpu-0", "cpu-1"]
    assert all(n["rayState"] == "ALIVE" for n in scaled["status"]["nodes"])

    # Idle for idleTimeoutSeconds: the group shrinks to minReplicas.
    patch = {"spec": {"idleTimeoutSeconds": 2, "workerGroups": [{**groups[0], "minReplicas": 0}]}}
    assert admin.patch(url, json=patch, headers=merge).is_success
    idle = wait_for(
        admin,
        url,
        lambda o: phase_is("Ready")(o) and o["status"]["workerGroups"][0]["desiredReplicas"] == 0,
        "scaled down to 0 workers",
        120,
    )
    assert [n["name"] for n in idle["status"]["nodes"]] == ["head"]
    # The scaled-away workers' logs stay, for when the group grows again.
    assert node_logs(server, team, name) == [f"{n}.log" for n in ("cpu-0", "cpu-1", "head")]
    events = events_of(admin, team, name)
    reasons = [e["reason"] for e in events]
    assert {"Scheduled", "Started", "Ready", "Scaled", "ScaledDown"} <= set(reasons), reasons
    # Each Ray node is a replica of its own in the lifecycle Events.
    said = {(e["reason"], e["message"].split(" (pid ")[0]) for e in events}
    for node, ip in [("the head", ips_of["head"]), ("worker cpu-0", ips_of["cpu-0"])]:
        assert ("Started", f"{node} started") in said, events
        assert ("Ready", f"{node} is ready at {ip}") in said, events
    assert ("Started", "worker cpu-1 started") in said, events

    # Deleting the cluster stops every one of its processes, and deletes every node's logs.
    before = ray_processes(server)
    assert before
    assert admin.delete(url).status_code == 200
    _gone, alive = psutil.wait_procs(before, 30)
    assert alive == [], [p.pid for p in alive]
    deadline = time.monotonic() + 30
    while node_logs(server, team, name):
        assert time.monotonic() < deadline, node_logs(server, team, name)
        time.sleep(0.1)


def test_only_users_who_may_run_code_reach_the_dashboard_and_llmos_ray_submit(
    server: RunningServer, admin: httpx.Client, team: str, tmp_path: Path
) -> None:
    name = unique("private")
    create(admin, "mlclusters", team, mlcluster(name, workers=0))
    wait_for(admin, path("mlclusters", team, name), phase_is("Ready"), "Ready", 180)
    base = f"/mlclusters/{team}/{name}/dashboard"
    outsider, viewer, member = unique("out"), unique("view"), unique("mem")
    for user in (outsider, viewer, member):
        create_user(admin, user, f"{user}-password-1")
    bind(admin, team, viewer, "namespace-readonly")
    bind(admin, team, member, "namespace-member")
    for user, expected in ((outsider, 403), (viewer, 403), (member, 200)):
        token = server.login(user, f"{user}-password-1")
        with server.client(token) as client:
            response = client.get(f"{base}/api/jobs/")
            assert response.status_code == expected, (user, response.text)
    with server.client() as anonymous:
        assert anonymous.get(f"{base}/api/jobs/").status_code == 401
    # The dashboard itself (the prefix is stripped; Ray serves it at /).
    page = admin.get(f"{base}/")
    assert page.status_code == 200 and "<html" in page.text.lower()
    assert admin.get(f"{base}/api/version").json()["ray_version"]
    assert admin.get(f"/mlclusters/{team}/{name}/other").status_code == 404

    # `llmos ray submit` with the saved login, logs followed to the end.
    cli = CLI(tmp_path / "config")
    assert cli.login(server).code == 0
    submitted = cli(
        "ray",
        "submit",
        name,
        "-n",
        team,
        "--",
        "python",
        "-c",
        "print('hello from', 6 * 7)",
        timeout=180,
    )
    assert submitted.code == 0, submitted
    assert "hello from 42" in submitted.stdout
    assert "SUCCEEDED" in submitted.stderr
    failed = cli("ray", "submit", name, "-n", team, "--", "false", timeout=180)
    assert failed.code == 1 and "FAILED" in failed.stderr, failed

    # Ray's own CLI, as docs/workloads.md shows it: an LLMOS token, the LLMOS CA, and a
    # working dir uploaded through the proxy.
    work = tmp_path / "job"
    work.mkdir()
    (work / "train.py").write_text(
        "import pathlib\nprint('trained on', pathlib.Path('data.txt').read_text())\n"
    )
    (work / "data.txt").write_text("uploaded bytes")
    ray_cli = subprocess.run(
        [
            str(Path(sys.executable).with_name("ray")),
            "job",
            "submit",
            "--address",
            server.url + base + "/",
            "--headers",
            json.dumps({"Authorization": f"Bearer {server.admin_token}"}),  # type: ignore[attr-defined]
            "--verify",
            str(server.ca),
            "--working-dir",
            str(work),
            "--",
            "python",
            "train.py",
        ],
        capture_output=True,
        text=True,
        timeout=180,
    )
    said = re.sub(r"\x1b\[[0-9;]*m", "", ray_cli.stdout + ray_cli.stderr)  # no colours
    assert ray_cli.returncode == 0, said
    assert "trained on uploaded bytes" in said
    assert re.search(r"Job 'raysubmit_\w+' succeeded", said), said
    delete_and_wait(server, admin, path("mlclusters", team, name))


def test_a_ray_version_mismatch_is_named(admin: httpx.Client, team: str) -> None:
    name = unique("old")
    create(admin, "mlclusters", team, mlcluster(name, rayVersion="1.0.0"))
    failed = wait_for(admin, path("mlclusters", team, name), phase_is("Failed"), "Failed")
    message = failed["status"]["message"]
    assert "1.0.0" in message and "2.60.0" in message, message
    assert condition(failed, "Ready")["reason"] == "VersionMismatch"
    admin.delete(path("mlclusters", team, name))


def test_kill_9_of_the_server_leaves_no_ray_behind(tmp_path: Path) -> None:
    server = start_server(tmp_path / "data")
    try:
        token = server.setup_admin()
        url = path("mlclusters", "default", "survivor")
        with server.client(token) as admin:
            create(admin, "mlclusters", "default", mlcluster("survivor"))
            wait_for(admin, url, phase_is("Ready"), "Ready", 180)
        processes = ray_processes(server)
        assert len(processes) > 5  # head, worker, GCS, raylets, dashboard, agents...
        server.stop(signal.SIGKILL)
        _gone, alive = psutil.wait_procs(processes, 30)
        assert alive == [], [(p.pid, p.name()) for p in alive]
        server.start()
        token = server.login("admin", ADMIN_PASSWORD)
        with server.client(token) as admin:
            seen = admin.get(url).json()["status"]
            # Never the killed server's Ready: it was marked starting before the new one served.
            assert seen["phase"] != "Ready" or ray_processes(server), seen
            wait_for(admin, url, phase_is("Ready"), "Ready again", 180)
            heads = [
                argv
                for argv in map(argv_of, ray_processes(server))
                if argv[1:3] == ["-P", "-c"]
                and "ray.scripts.scripts" in argv[3]
                and "--head" in argv
            ]
            assert len(heads) == 1
            # Ray's temp dir was swept at the restart: only the new session is left.
            sessions = ray_temp(server, "default", "survivor").glob("session_2*")
            assert len(list(sessions)) == 1
            delete_and_wait(server, admin, url)
    finally:
        server.stop()


def _quote(script: str) -> str:
    return "'" + script.replace("'", "'\\''") + "'"
