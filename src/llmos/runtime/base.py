"""The Runtime interface: run, watch and stop the replicas of workloads.

Two implementations: ``local`` (embedded mode: one supervised process per
replica on this machine) and, in cluster mode, ``kube`` (Kubernetes objects).
Controllers describe *what* should run with a :class:`ReplicaSpec`; the
runtime makes it so, keeps it running (restarts with backoff), probes its
health, and reports a :class:`ReplicaStatus`. ``ensure`` is idempotent.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Protocol


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
class ReplicaSpec:
    """One process to keep running. ``key`` is unique, e.g. ``modelservices/default/demo/0``."""

    key: str
    command: tuple[str, ...]
    env: tuple[tuple[str, str], ...] = ()
    cwd: Path | None = None
    # The runtime allocates a free 127.0.0.1 port and substitutes it for the
    # literal "{port}" in ``command`` and env values, and sets PORT.
    wants_port: bool = True
    health: HealthCheck | None = field(default_factory=HealthCheck)
    grace_seconds: float = 10.0
    # Labels for the owner (kind, namespace, name) so status changes can be routed.
    owner: tuple[str, str, str] = ("", "", "")


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


StatusHandler = Callable[[ReplicaStatus, ReplicaSpec], None]


class Runtime(Protocol):
    async def start(self) -> None:
        """Begin supervising; clean up (or adopt) what a previous server left behind."""

    async def stop(self) -> None:
        """Stop every replica (SIGTERM, then SIGKILL after its grace period)."""

    async def ensure(self, spec: ReplicaSpec) -> ReplicaStatus:
        """Make ``spec`` run. A changed spec for the same key restarts the replica."""

    async def remove(self, key: str) -> None:
        """Stop the replica for good: SIGTERM, then SIGKILL after the grace period."""

    def status(self, key: str) -> ReplicaStatus | None:
        """The replica's current status, or None if the runtime does not know it."""

    def keys(self, prefix: str = "") -> list[str]:
        """Keys of the replicas this runtime supervises, optionally by prefix."""

    def on_status(self, handler: StatusHandler) -> None:
        """Call ``handler`` whenever a replica's phase, readiness or restarts change."""

    def logs(
        self, key: str, *, follow: bool = False, tail: int | None = None
    ) -> AsyncIterator[str]:
        """The replica's log lines (stdout and stderr), oldest first; ``follow`` keeps going."""
