"""The rest of a control plane on the fixture's API server: controllers, scheduler and KWOK nodes.

``kube_nodes`` adds kube-controller-manager (garbage collection, StatefulSets,
service accounts), kube-scheduler and kwok (which plays the kubelet of fake
nodes: it marks them Ready, keeps their leases, and runs their pods by setting
pod status). It registers one fake GPU node, ``kwok-gpu-0`` with 8
``nvidia.com/gpu``, and is ready when the scheduler and controller-manager
answer /healthz, the ``default`` service account exists and that node is Ready.
All three use the fixture's admin credentials. Started only for tests that ask.

``running_nodes(..., kuberay=True)`` (the server's plane, ``kube_server_nodes``)
also applies KubeRay's CRDs (RayCluster, RayJob, RayService, copied from the
pinned module by the setup script) and starts the KubeRay operator, which makes
a RayCluster's head and worker pods and Services; kwok runs those pods.
"""

from __future__ import annotations

import ssl
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
import yaml

from kubeplane import (
    START_TIMEOUT,
    KubeCluster,
    Process,
    apply,
    binary,
    free_port,
    probe,
    wait_established,
)

GPU_NODE = "kwok-gpu-0"
GPUS_PER_NODE = 8
KUBERAY_CRDS = ("ray.io_rayclusters.yaml", "ray.io_rayjobs.yaml", "ray.io_rayservices.yaml")


@dataclass(frozen=True)
class KubeNodes:
    """The control plane with controllers, a scheduler and one Ready fake GPU node."""

    cluster: KubeCluster
    gpu_node: str


def fake_node(name: str, gpus: int, **labels: str) -> dict[str, Any]:
    """A Node that kwok manages (by annotation), with CPU, memory and GPU capacity."""
    capacity = {"cpu": "32", "memory": "256Gi", "pods": "110", "nvidia.com/gpu": str(gpus)}
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {
            "name": name,
            "annotations": {"kwok.x-k8s.io/node": "fake"},
            "labels": {"kubernetes.io/hostname": name, "type": "kwok", **labels},
        },
        "spec": {"taints": []},
        "status": {"capacity": capacity, "allocatable": capacity},
    }


def _insecure_local() -> ssl.SSLContext:
    # The components serve /healthz with certificates they make up at start; we only
    # ask them whether they are alive, on loopback.
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    return context


def _start_component(cluster: KubeCluster, name: str, extra: list[str]) -> Process:
    port = free_port()
    process = Process(
        name,
        [
            str(binary(name)),
            f"--kubeconfig={cluster.kubeconfig}",
            "--leader-elect=false",
            "--bind-address=127.0.0.1",
            f"--secure-port={port}",
            f"--cert-dir={cluster.work / (name + '-certs')}",
            "--v=1",
            *extra,
        ],
        cluster.work / f"{name}.log",
    )
    process.wait_until(
        lambda: probe(f"https://127.0.0.1:{port}/healthz", verify=_insecure_local()),
        "a healthy /healthz",
    )
    return process


def _start_kuberay(cluster: KubeCluster) -> Process:
    """The KubeRay operator with the fixture's kubeconfig; its CRDs must be served first.

    It sets up its RayJob and RayService controllers too, so all three CRDs are applied.
    Leader election is off and its metrics and probes listen on free loopback ports.
    """
    with cluster.client() as client:
        names = []
        for file in KUBERAY_CRDS:
            crd = yaml.safe_load(binary(file).read_text())
            apply(client, crd)
            names.append(crd["metadata"]["name"])
        wait_established(client, names)
    health = free_port()
    process = Process(
        "kuberay-operator",
        [
            str(binary("kuberay-operator")),
            f"--kubeconfig={cluster.kubeconfig}",
            "--enable-leader-election=false",
            f"--metrics-addr=127.0.0.1:{free_port()}",
            f"--health-probe-bind-address=127.0.0.1:{health}",
            "--log-stdout-encoder=console",
        ],
        cluster.work / "kuberay-operator.log",
    )
    try:
        process.wait_until(lambda: probe(f"http://127.0.0.1:{health}/readyz"), "a ready /readyz")
    except BaseException:
        process.stop()
        raise
    return process


def _wait_for(process: Process, client: httpx.Client, path: str, test: Any, what: str) -> None:
    def ready() -> bool:
        response = client.get(path)
        return response.status_code == 200 and bool(test(response.json()))

    process.wait_until(ready, what)


def _node_ready(node: dict[str, Any]) -> bool:
    conditions = node.get("status", {}).get("conditions") or []
    return any(c["type"] == "Ready" and c["status"] == "True" for c in conditions)


@contextmanager
def running_nodes(
    cluster: KubeCluster, pod_cidr: str | None = None, kuberay: bool = False
) -> Iterator[KubeNodes]:
    """Controllers, a scheduler and kwok on ``cluster``, with the fake GPU node Ready.

    ``pod_cidr`` is where kwok takes the fake pods' IPs from: a loopback range lets a
    test stand a real server in for a pod (kwok runs no containers). ``kuberay`` adds
    KubeRay's CRDs and operator.
    """
    needed = ["kube-controller-manager", "kube-scheduler", "kwok", "kwok.yaml"]
    if kuberay:
        needed += ["kuberay-operator", *KUBERAY_CRDS]
    for name in needed:
        binary(name)
    started: list[Process] = []
    try:
        manager = _start_component(
            cluster,
            "kube-controller-manager",
            [
                f"--service-account-private-key-file={cluster.service_account_key}",
                f"--root-ca-file={cluster.ca_file}",
                "--cluster-name=llmos-fixture",
            ],
        )
        started.append(manager)
        started.append(_start_component(cluster, "kube-scheduler", []))
        kwok = Process(
            "kwok",
            [
                str(binary("kwok")),
                f"--kubeconfig={cluster.kubeconfig}",
                "--manage-nodes-with-annotation-selector=kwok.x-k8s.io/node=fake",
                "--node-lease-duration-seconds=40",
                f"--config={binary('kwok.yaml')}",  # kwok's standard stages (setup script)
            ],
            cluster.work / "kwok.log",
        )
        started.append(kwok)
        node = fake_node(GPU_NODE, GPUS_PER_NODE)
        if pod_cidr:
            node["spec"]["podCIDR"] = pod_cidr
        with cluster.client() as client:
            _wait_for(
                manager,
                client,
                "/api/v1/namespaces/default/serviceaccounts/default",
                lambda sa: True,
                "the default service account",
            )
            created = client.post("/api/v1/nodes", json=node)
            assert created.status_code in (201, 409), created.text
            _wait_for(kwok, client, f"/api/v1/nodes/{GPU_NODE}", _node_ready, "a Ready node")
        if kuberay:
            started.append(_start_kuberay(cluster))
        yield KubeNodes(cluster, GPU_NODE)
    finally:
        for process in reversed(started):
            process.stop()


@pytest.fixture(scope="session")
def kube_nodes(kube: KubeCluster) -> Iterator[KubeNodes]:
    with running_nodes(kube) as nodes:
        yield nodes


def wait_until(check: Any, what: str, timeout: float = START_TIMEOUT) -> Any:
    """Poll ``check`` until it returns something true; fail naming ``what``."""
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result:
            return result
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(0.1)
