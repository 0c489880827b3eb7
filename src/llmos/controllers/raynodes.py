"""Where each Ray node of an MLCluster runs on this machine, and the command that starts it.

Used by the MLCluster controller. Ray's GCS, raylets and workers bind their
gRPC ports on every interface and find each other by node IP, so several Ray
nodes on one machine need distinct loopback IPs *and* port ranges that never
overlap. This module hands out **slots**: slot ``s`` is node IP
``127.0.0.{s+2}`` and the ports ``20000 + 300*s`` .. ``+299`` (below the
kernel's ephemeral range, so nothing the OS picks at random lands there). A
slot's first ten ports are the node's own fixed ports (the head's GCS and
dashboard, the dashboard on 127.0.0.1; every node's dashboard agent, raylet,
object manager, metrics and runtime-env agent); the rest are its worker ports.
Ray would otherwise pick those from the kernel's ephemeral range, where one
node's random port can be the port another node's agent was told to use. 40
slots give 40 Ray nodes per machine (all clusters together), each with 290
worker ports. Every node's dashboard agent also listens on 127.0.0.1, which is
what the runtime probes: once the head's agent answers, its raylet is up and
the Jobs API accepts jobs.

Slots live in memory: after a server restart every Ray process is started
afresh (the runtime does not adopt), so slots are handed out again.

``ray start`` runs without Ray Client's server (``ray://``), which LLMOS does
not expose (users reach a cluster through the proxied dashboard and Jobs
API): ``ray start`` has no flag to leave it out, so the command sets Ray's
check for its dependencies to "missing" first. That spares the head a Python
process that imports all of Ray while the dashboard starts (about 3 s of CPU,
``docs/benchmarks.md``).
"""

from __future__ import annotations

import errno
import importlib.metadata
import importlib.util
import math
import os
import socket
import sys
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from llmos._lib.quantity import parse_quantity
from llmos.controllers.errors import PermanentError, TemporaryError
from llmos.controllers.gpualloc import GPUPlacement
from llmos.runtime.base import HealthCheck, Limits, ReplicaSpec

FIRST_PORT = 20000
SLOT_PORTS = 300
SLOTS = 40
WORKER_PORTS_FROM = 10  # offset of the first worker port in a slot

# A Ray node's dashboard agent answers for its raylet. The agent stops answering for
# seconds while it connects its Jobs API to Ray (a blocking ray.init on its event
# loop, the first time a job is submitted or warmed up): only half a minute of
# silence counts as Unhealthy.
RAY_NODE_HEALTH = HealthCheck(
    path="/api/local_raylet_healthz",
    period_seconds=5.0,
    timeout_seconds=5.0,
    failure_threshold=3,
    startup_timeout_seconds=180.0,
)


class RayUnavailable(PermanentError):
    """Ray is not installed here, or not the version the cluster asks for."""

    def __init__(self, message: str, reason: str) -> None:
        super().__init__(message)
        self.reason_code = reason


def installed_ray_version() -> str | None:
    """The version of the ``ray`` package next to this server, or None."""
    if importlib.util.find_spec("ray") is None:
        return None
    try:
        return importlib.metadata.version("ray")
    except importlib.metadata.PackageNotFoundError:
        return None


def check_ray(wanted: str | None) -> str:
    """The installed Ray version, if it is there and matches ``wanted``; else RayUnavailable."""
    installed = installed_ray_version()
    if installed is None:
        raise RayUnavailable(
            "Ray is not available on this node: install the ray extra "
            "(scripts/setup --ray, or pip install 'llmos[ray]')",
            "NotAvailable",
        )
    if wanted and wanted != installed:
        raise RayUnavailable(
            f"spec.rayVersion is {wanted} but this node has Ray {installed}: set "
            f"spec.rayVersion to {installed} (or leave it out), or install Ray {wanted}",
            "VersionMismatch",
        )
    return installed


@dataclass(frozen=True)
class Slot:
    index: int

    @property
    def ip(self) -> str:
        return f"127.0.0.{self.index + 2}"

    @property
    def first_port(self) -> int:
        return FIRST_PORT + SLOT_PORTS * self.index

    @property
    def gcs_port(self) -> int:
        return self.first_port

    @property
    def client_port(self) -> int:
        return self.first_port + 1

    @property
    def agent_port(self) -> int:
        return self.first_port + 2

    @property
    def dashboard_port(self) -> int:
        return self.first_port + 3

    @property
    def fixed_port_flags(self) -> list[str]:
        """The node's own ports, all from the slot: nothing left for Ray to pick at random."""
        first = self.first_port
        return [
            f"--dashboard-agent-listen-port={self.agent_port}",
            f"--dashboard-agent-grpc-port={first + 4}",
            f"--node-manager-port={first + 5}",
            f"--object-manager-port={first + 6}",
            f"--metrics-export-port={first + 7}",
            f"--runtime-env-agent-port={first + 8}",
        ]

    @property
    def worker_ports(self) -> tuple[int, int]:
        return self.first_port + WORKER_PORTS_FROM, self.first_port + SLOT_PORTS - 1

    def ports(self) -> Iterable[int]:
        return range(self.first_port, self.first_port + SLOT_PORTS)


def _bindable(ip: str, port: int) -> bool:
    for host in ("0.0.0.0", ip):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                sock.bind((host, port))
            except OSError as exc:
                if exc.errno in (errno.EADDRINUSE, errno.EACCES, errno.EADDRNOTAVAIL):
                    return False
                raise
    return True


def slot_is_free(slot: Slot) -> bool:
    """Whether nothing else on this machine listens on the slot's IP or ports."""
    return all(_bindable(slot.ip, port) for port in slot.ports())


class Slots:
    """Which replica key holds which slot."""

    def __init__(self, count: int = SLOTS) -> None:
        self._count = count
        self._held: dict[str, Slot] = {}

    def get(self, key: str) -> Slot | None:
        return self._held.get(key)

    def allocate(self, key: str) -> Slot:
        """The slot ``key`` holds, or the first free one (TemporaryError when none is)."""
        if key in self._held:
            return self._held[key]
        taken = {slot.index for slot in self._held.values()}
        for index in range(self._count):
            if index in taken:
                continue
            slot = Slot(index)
            if slot_is_free(slot):
                self._held[key] = slot
                return slot
        raise TemporaryError(
            f"no free Ray node slot on this machine: {len(taken)} Ray nodes run here and the "
            f"ports {FIRST_PORT}-{FIRST_PORT + SLOT_PORTS * self._count - 1} are otherwise in "
            "use; scale a cluster down or delete one"
        )

    def release(self, key: str) -> None:
        self._held.pop(key, None)


def _count(value: str | int | float) -> int:
    quantity = float(parse_quantity(value))
    return int(quantity) if quantity == int(quantity) else math.ceil(quantity)


def resource_flags(resources: dict[str, Any]) -> list[str]:
    """``ray start`` flags for a ResourceRequirements: CPUs, memory and GPUs the node offers."""
    flags = []
    if resources.get("cpu") is not None:
        flags += ["--num-cpus", str(_count(resources["cpu"]))]
    if resources.get("memory") is not None:
        flags += ["--memory", str(int(parse_quantity(resources["memory"])))]
    flags += ["--num-gpus", str(int(resources.get("gpu") or 0))]
    return flags


# `ray start`, told that Ray Client's dependencies are missing, so it starts no client server.
_RAY_START = (
    "import sys, ray.scripts.scripts as cli; "
    "cli.get_ray_client_dependency_error = lambda: ImportError('LLMOS does not use Ray Client'); "
    "sys.exit(cli.main())"
)


def _ray(*args: str) -> list[str]:
    # The wrapper stops the whole process tree if the server dies (see fateshare).
    # -P: the working dir is a volume's, whose files must not stand in for modules.
    return [
        sys.executable,
        "-P",
        "-m",
        "llmos.runtime.local.fateshare",
        "--grace",
        "8",
        "--",
        sys.executable,
        "-P",
        "-c",
        _RAY_START,
        "start",
        "--block",
        "--disable-usage-stats",
        *args,
    ]


def head_command(slot: Slot, temp_dir: Path, resources: dict[str, Any]) -> list[str]:
    low, high = slot.worker_ports
    return _ray(
        "--head",
        f"--node-ip-address={slot.ip}",
        f"--port={slot.gcs_port}",
        "--include-dashboard=true",
        "--dashboard-host=127.0.0.1",
        f"--dashboard-port={slot.dashboard_port}",
        *slot.fixed_port_flags,
        f"--min-worker-port={low}",
        f"--max-worker-port={high}",
        f"--temp-dir={temp_dir}",
        *resource_flags(resources),
    )


def worker_command(slot: Slot, head: Slot, temp_dir: Path, resources: dict[str, Any]) -> list[str]:
    low, high = slot.worker_ports
    return _ray(
        f"--address={head.ip}:{head.gcs_port}",
        f"--node-ip-address={slot.ip}",
        *slot.fixed_port_flags,
        f"--min-worker-port={low}",
        f"--max-worker-port={high}",
        f"--temp-dir={temp_dir}",
        *resource_flags(resources),
    )


def node_env(token: str, gpus: int) -> dict[str, str]:
    """What every Ray process of a cluster needs in its environment."""
    venv_bin = str(Path(sys.executable).parent)
    path = os.environ.get("PATH", "/usr/bin:/bin")
    env = {
        # Ray's own token auth: its GCS and raylets listen on every interface.
        "RAY_AUTH_MODE": "token",
        "RAY_AUTH_TOKEN": token,
        "RAY_USAGE_STATS_ENABLED": "0",
        # A removed node stops now instead of draining for 30 s.
        "RAY_GRACEFUL_SHUTDOWN_DRAIN_TIMEOUT_S": "0",
        # Job entrypoints run `python ...`: make it this environment's, which has Ray.
        "PATH": venv_bin if not path else f"{venv_bin}:{path}",
    }
    if not gpus:
        env["CUDA_VISIBLE_DEVICES"] = ""
    return env


def node_label(key: str) -> str:
    """How the cluster's Events name the Ray node ``key``: ``the head``, ``worker cpu-1``."""
    node = key.rsplit("/", 1)[-1]
    return "the head" if node == "head" else f"worker {node}"


def node_spec(
    key: str,
    command: list[str],
    slot: Slot,
    env: dict[str, str],
    cwd: Path,
    cluster: dict[str, Any],
    resources: dict[str, Any],
    placed: GPUPlacement | None = None,
) -> ReplicaSpec:
    """The runtime's replica for one Ray node: probed on its slot's agent port, held to its
    ``resources``' memory and CPU as a whole (Ray's daemons and its workers)."""
    meta = cluster["metadata"]
    return ReplicaSpec(
        key=key,
        command=tuple(command),
        port=slot.agent_port,
        env=tuple(sorted(env.items())),
        cwd=cwd,
        health=RAY_NODE_HEALTH,
        grace_seconds=10.0,
        owner=("MLCluster", meta["namespace"], meta["name"]),
        limits=Limits.of(resources),
        gpu_shares=placed.shares if placed is not None else (),
        label=node_label(key),
    )
