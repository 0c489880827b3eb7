"""The Runtime interface: run, watch and stop the replicas of workloads.

Two implementations: ``local`` (embedded mode: one supervised process per
replica on this machine) and, in cluster mode, ``kube`` (Kubernetes objects).
Controllers describe *what* should run with a :class:`ReplicaSpec`; the
runtime makes it so, keeps it running (restarts with backoff), probes its
health, and reports a :class:`ReplicaStatus`. ``ensure`` is idempotent.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Collection
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any, Protocol

from llmos._lib.quantity import parse_quantity


class Phase(StrEnum):
    STARTING = "Starting"  # process started, not yet healthy
    READY = "Ready"  # health probe passes
    UNHEALTHY = "Unhealthy"  # running, but the probe has failed repeatedly
    BACKOFF = "BackOff"  # exited; waiting to restart
    CRASHLOOP = "CrashLoop"  # exited repeatedly in a short time; still retried, slower
    STOPPED = "Stopped"  # removed or stopped on purpose


@dataclass(frozen=True)
class HealthCheck:
    """An HTTP GET on ``http://127.0.0.1:{port}{path}``; 2xx means healthy."""

    path: str = "/health"
    period_seconds: float = 2.0
    timeout_seconds: float = 2.0
    # Consecutive failures after being ready before the replica is Unhealthy.
    failure_threshold: int = 3
    # How long a starting replica may take to become healthy before it is restarted.
    startup_timeout_seconds: float = 600.0


@dataclass(frozen=True)
class Limits:
    """A replica's memory limit in bytes, and its CPU share in cores (a weight, as a Kubernetes
    CPU request is, not a cap)."""

    memory: int | None = None
    cpus: float | None = None

    @classmethod
    def of(cls, resources: dict[str, Any] | None) -> Limits | None:
        """A workload's ``resources.memory`` and ``resources.cpu`` (quantities), if any."""
        resources = resources or {}
        memory, cpu = resources.get("memory"), resources.get("cpu")
        if memory is None and cpu is None:
            return None
        limit = None if memory is None else int(parse_quantity(memory))
        return cls(
            # The kernel's counters are 64-bit: past 2^62 bytes is no limit at all.
            memory=None if limit is None or limit >= 2**62 else limit,
            cpus=None if cpu is None else float(parse_quantity(cpu)),
        )


@dataclass(frozen=True)
class ReplicaSpec:
    """One process to keep running. ``key`` is unique, e.g. ``modelservices/default/demo/0``."""

    key: str
    command: tuple[str, ...]
    env: tuple[tuple[str, str], ...] = ()
    cwd: Path | None = None
    # The runtime allocates a free 127.0.0.1 port and substitutes it for the
    # literal "{port}" in ``command`` and env values, and sets PORT.
    wants_port: bool = True
    # Or a port the caller reserved itself: used (and probed) as it is, never reallocated.
    port: int | None = None
    health: HealthCheck | None = field(default_factory=HealthCheck)
    grace_seconds: float = 10.0
    # Labels for the owner (kind, namespace, name) so status changes can be routed.
    owner: tuple[str, str, str] = ("", "", "")
    # Its memory limit and CPU share (the local runtime: a cgroup of its own).
    limits: Limits | None = None
    # Its share of each GPU it shares with other workloads: (NVML index, bytes); none
    # for whole GPUs. ``llmos.controllers.gpushare`` compares its processes' use with it.
    gpu_shares: tuple[tuple[int, int], ...] = ()
    # How its owner's Events name it: "replica 0", "the notebook", "the head", "worker gpu-1".
    label: str = ""


@dataclass(frozen=True)
class Termination:
    """How a replica's process last ended; kept after it restarts, like Kubernetes' ``lastState``."""

    count: int  # 1 for the replica's first exit, 2 for the next: a new value is a new exit
    # OOMKilled (SIGKILL from the kernel's OOM killer), Unhealthy (stopped by the runtime
    # for failing its health check), FailedStart (could not be spawned) or Error.
    reason: str
    message: str
    exit_code: int | None = None
    last_lines: tuple[str, ...] = ()


@dataclass(frozen=True)
class ReplicaStatus:
    key: str
    phase: Phase
    ready: bool
    pid: int | None = None
    port: int | None = None
    restarts: int = 0
    last_exit_code: int | None = None
    message: str = ""
    # The last lines the process wrote, for crash messages and Events.
    last_lines: tuple[str, ...] = ()
    started_at: float | None = None
    last_termination: Termination | None = None
    # Processes of the replica that the kernel's OOM killer ended while the replica itself
    # ran on (on cgroup v1 it ends one process, a Ray task say), counted over its restarts.
    oom_kills: int = 0
    # Exits of the replica that the OOM killer caused (last_termination.reason OOMKilled),
    # counted over its restarts.
    oom_exits: int = 0


StatusHandler = Callable[[ReplicaStatus, ReplicaSpec], None]


class Runtime(Protocol):
    async def start(self) -> None:
        """Begin supervising; clean up (or adopt) what a previous server left behind."""

    async def stop(self) -> None:
        """Stop every replica (SIGTERM, then SIGKILL after its grace period)."""

    async def ensure(self, spec: ReplicaSpec) -> ReplicaStatus:
        """Make ``spec`` run. A changed spec for the same key restarts the replica."""

    async def remove(self, key: str) -> None:
        """Stop the replica for good: SIGTERM, then SIGKILL after the grace period.

        Its logs stay: a replica of the same key (a restart, a scale back up) writes on.
        """

    def forget_logs(self, prefix: str, *, keep: Collection[str] = ()) -> int:
        """Delete the logs of the replicas under ``prefix`` that do not run, but not under ``keep``.

        For when the object that owns them is deleted (``prefix`` names it, as
        ``modelservices/NS/NAME/``): a new object of the same name then starts with
        no logs. Returns how many replicas' logs went.
        """

    def status(self, key: str) -> ReplicaStatus | None:
        """The replica's current status, or None if the runtime does not know it."""

    def keys(self, prefix: str = "") -> list[str]:
        """Keys of the replicas this runtime supervises, optionally by prefix."""

    def spec(self, key: str) -> ReplicaSpec | None:
        """What the replica runs, as last ensured, or None if the runtime does not know it."""

    def on_status(self, handler: StatusHandler) -> None:
        """Call ``handler`` whenever a replica's phase, readiness or restarts change."""

    def logs(
        self, key: str, *, follow: bool = False, tail: int | None = None
    ) -> AsyncIterator[str]:
        """The replica's log lines (stdout and stderr), oldest first; ``follow`` keeps going."""


# -- cluster mode: Kubernetes runs the replicas; LLMOS hands it whole workloads ------------


@dataclass(frozen=True)
class Happening:
    """Something that happened to one pod; ``key`` makes it an Event only once."""

    key: str
    reason: str
    message: str
    type: str = "Normal"


@dataclass
class Observed:
    phase: str
    message: str
    replicas: int = 0
    ready: int = 0
    endpoints: list[str] = field(default_factory=list)
    # condition type -> (status, reason, message)
    conditions: dict[str, tuple[bool, str, str]] = field(default_factory=dict)
    happenings: list[Happening] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)


ChangeHandler = Callable[[str, str, str], None]  # (LLMOS kind, namespace, name)


class WorkloadRuntime(Protocol):
    """Cluster mode's runtime: whole LLMOS objects in, their observed state out.

    Kubernetes schedules, restarts, probes and keeps logs, so where the local
    runtime runs replica processes this one applies an object's children
    (StatefulSets, Services, PVCs, RayClusters) and reads them back.
    """

    async def start(self) -> None:
        """Begin watching the children, calling the ``on_change`` handlers."""

    async def stop(self) -> None: ...

    async def apply(self, obj: dict[str, Any], *, hf_token: str | None = None) -> None:
        """Make the children of ``obj`` match it; idempotent."""

    async def observe(self, obj: dict[str, Any]) -> Observed:
        """How the children of ``obj`` are doing, as LLMOS status."""

    def on_change(self, handler: ChangeHandler) -> None:
        """Call ``handler(kind, namespace, name)`` when a child of that object changes."""

    async def logs(
        self,
        obj: dict[str, Any],
        replica: int = 0,
        *,
        follow: bool = False,
        tail: int | None = None,
    ) -> AsyncIterator[str]:
        """Open the log of one replica of ``obj``: raises, naming the pod, if it cannot."""
