"""Benchmark cluster mode on the test control plane (etcd + kube-apiserver built from Go modules).

Measures what issue 8 sets targets for, plus the store's basic costs:
- reconcile latency: from a ModelService spec update through the Kubernetes
  store to the controller's ``reconcile`` seeing that spec (target p99 <= 1 s);
- idle memory of ``llmos server --store kube`` (target <= 150 MB), its RSS
  after start-up and a quiet period;
- GET and LIST latency of the Kubernetes store with ``--objects`` ModelServices;
- a ModelService change through the Kubernetes runtime, end to end, with the
  controller-manager, scheduler and a kwok GPU node: from the API write (scaling
  between 1 and 2 replicas) to the StatefulSet carrying the change ("applied"),
  and to the ModelService's status showing that many ready replicas ("status").

Needs scripts/setup-kube-fixture.sh to have run.

    .venv/bin/python bench/kube.py [--updates 200] [--objects 1000] [--json results.json]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
from kubenodes import running_nodes
from kubeplane import KubeCluster, apply_crds, control_plane
from llmos.controllers.loop import Controller, ObjectKey
from llmos.store.kube.client import KubeConnection
from llmos.store.kube.store import KubeStore
from server import RunningServer, free_port

TARGETS = {"reconcile_p99_ms": 1000.0, "rollout_applied_p99_ms": 1000.0, "idle_rss_mb": 150.0}
R = "modelservices.ml.llmos.ai"
NS = "bench"


def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS")


def body(name: str, replicas: int = 0) -> dict[str, Any]:
    return {
        "apiVersion": "ml.llmos.ai/v1",
        "kind": "ModelService",
        "metadata": {"name": name, "namespace": NS, "labels": {"shard": name[-1]}},
        "spec": {"model": "bundled:smollm2", "replicas": replicas},
    }


class Stopwatch:
    """A reconciler that notes when it first sees each update (``spec.engineArgs[0]``)."""

    resource = R

    def __init__(self, store: KubeStore) -> None:
        self.store = store
        self.seen: dict[int, float] = {}

    async def reconcile(self, key: ObjectKey) -> float | None:
        if key.namespace != NS or key.name != "timed":
            return None
        current = await self.store.get(R, NS, "timed")
        marks = current["spec"].get("engineArgs") or ["0"]
        self.seen.setdefault(int(marks[0]), time.perf_counter())
        return None


async def reconcile_latency(store: KubeStore, updates: int) -> list[float]:
    """One spec change at a time: each waits for its reconcile before the next is sent."""
    watch = Stopwatch(store)
    controller = Controller(store, watch, workers=2, resync_seconds=3600)
    await controller.start()
    try:
        obj = await store.create(R, body("timed"))
        sent: dict[int, float] = {}
        for value in range(1, updates + 1):
            obj["spec"]["engineArgs"] = [str(value)]
            sent[value] = time.perf_counter()
            obj = await store.update(R, obj)
            deadline = time.perf_counter() + 10
            while value not in watch.seen:
                if time.perf_counter() > deadline:
                    raise TimeoutError(f"update {value} was never reconciled")
                await asyncio.sleep(0.001)
        return [(watch.seen[value] - at) * 1000 for value, at in sent.items()]
    finally:
        await controller.stop()


async def store_latency(store: KubeStore, count: int) -> dict[str, float]:
    started = time.perf_counter()
    sem = asyncio.Semaphore(16)

    async def one(index: int) -> None:
        async with sem:
            await store.create(R, body(f"m{index:05d}"))

    await asyncio.gather(*(one(i) for i in range(count)))
    populate = time.perf_counter() - started
    gets = []
    for index in range(0, count, max(1, count // 200)):
        t0 = time.perf_counter()
        await store.get(R, NS, f"m{index:05d}")
        gets.append((time.perf_counter() - t0) * 1000)
    lists = []
    for _ in range(10):
        t0 = time.perf_counter()
        page = await store.list(R, NS)
        lists.append((time.perf_counter() - t0) * 1000)
    assert len(page.raw_items) >= count
    return {
        "populate_per_s": count / populate,
        "get_p50_ms": pct(gets, 50),
        "get_p99_ms": pct(gets, 99),
        "list_p50_ms": pct(lists, 50),
        "list_max_ms": max(lists),
    }


def idle_server_rss(cluster: KubeCluster, work: Path, settle: float) -> dict[str, float]:
    args = ["--store", "kube", "--kubeconfig", str(cluster.kubeconfig), "--skip-preflight"]
    server = RunningServer(work / "data", free_port(), args)
    started = time.perf_counter()
    server.start(timeout=120)
    ready = time.perf_counter() - started
    try:
        time.sleep(settle)
        return {"ready_seconds": ready, "idle_rss_mb": rss_mb(server.pid)}
    finally:
        server.stop()


def _poll(check: Any, timeout: float = 30.0) -> float:
    """Seconds until ``check()`` holds, polling every 10 ms."""
    start = time.perf_counter()
    while not check():
        if time.perf_counter() - start > timeout:
            raise TimeoutError("the change did not show within 30 s")
        time.sleep(0.01)
    return time.perf_counter() - start


def rollout_latency(cluster: KubeCluster, work: Path, changes: int) -> dict[str, float]:
    args = ["--store", "kube", "--kubeconfig", str(cluster.kubeconfig), "--skip-preflight"]
    # The data dir of idle_server_rss, which holds the admin's bootstrap password.
    server = RunningServer(work / "data", free_port(), args)
    server.start(timeout=120)
    applied: list[float] = []
    status: list[float] = []
    try:
        token = server.setup_admin()
        with running_nodes(cluster), server.client(token) as api, cluster.client() as kube:
            namespace = {"apiVersion": "management.llmos.ai/v1", "kind": "Namespace"}
            api.post(
                "/apis/management.llmos.ai/v1/namespaces",
                json={**namespace, "metadata": {"name": "roll"}},
            )
            path = "/apis/ml.llmos.ai/v1/namespaces/roll/modelservices"
            made = api.post(path, json={**body("m", replicas=1), "metadata": {"name": "m"}})
            assert made.status_code == 201, made.text
            path += "/m"
            sts = "/apis/apps/v1/namespaces/roll/statefulsets/ms-m"

            def ready(n: int) -> bool:
                got = api.get(path).json().get("status") or {}
                return got.get("readyReplicas") == n and got.get("phase") == "Ready"

            _poll(lambda: ready(1), timeout=120)
            for index in range(changes):
                wanted = 2 if index % 2 == 0 else 1
                current = api.get(path).json()
                current["spec"]["replicas"] = wanted
                started = time.perf_counter()
                assert api.put(path, json=current).status_code == 200
                _poll(lambda n=wanted: kube.get(sts).json()["spec"]["replicas"] == n)
                applied.append((time.perf_counter() - started) * 1000)
                _poll(lambda n=wanted: ready(n))
                status.append((time.perf_counter() - started) * 1000)
    finally:
        server.stop()
    return {
        "rollout_applied_p50_ms": pct(applied, 50),
        "rollout_applied_p99_ms": pct(applied, 99),
        "rollout_status_p50_ms": pct(status, 50),
        "rollout_status_p99_ms": pct(status, 99),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--updates", type=int, default=200)
    parser.add_argument("--objects", type=int, default=1000)
    parser.add_argument("--settle", type=float, default=15.0)
    parser.add_argument("--changes", type=int, default=40)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    results: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as tmp, control_plane(Path(tmp)) as cluster:
        with cluster.client() as client:
            apply_crds(client)

        async def measure() -> None:
            connection = KubeConnection(cluster.url, cluster.token, cluster.ca_file.read_bytes())
            store = KubeStore(connection)
            try:
                samples = await reconcile_latency(store, args.updates)
                results.update(
                    reconcile_p50_ms=pct(samples, 50),
                    reconcile_p99_ms=pct(samples, 99),
                    reconcile_max_ms=max(samples),
                )
                results.update(await store_latency(store, args.objects))
            finally:
                await store.close()

        asyncio.run(measure())
        results.update(idle_server_rss(cluster, Path(tmp), args.settle))
        results.update(rollout_latency(cluster, Path(tmp), args.changes))
    for key, value in results.items():
        target = TARGETS.get(key)
        verdict = "met" if target is not None and value <= target else "MISSED"
        mark = "" if target is None else f" (target <= {target:g}: {verdict})"
        print(f"{key:20} {value:10.2f}{mark}")
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))
    return 0 if all(results[k] <= v for k, v in TARGETS.items()) else 1


if __name__ == "__main__":
    sys.exit(main())
