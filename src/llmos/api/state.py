"""What the HTTP handlers share: the store, auth, the kind registry and config."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from prometheus_client import CollectorRegistry
from starlette.requests import Request

from llmos.api.config import ServerConfig
from llmos.api.exposition import Exposition
from llmos.auth.service import AuthService
from llmos.gateway.history import History
from llmos.gateway.usage import Usage
from llmos.resources.registry import KIND_REGISTRY, Registry
from llmos.runtime.base import Runtime, WorkloadRuntime
from llmos.store.base import ResourceStore


@dataclass
class AppState:
    config: ServerConfig
    store: ResourceStore
    auth: AuthService
    ca_cert: Path
    registry: Registry = KIND_REGISTRY
    ready: bool = False
    bootstrap_password_file: Path | None = None
    runtime: Runtime | None = None
    # Cluster mode: the runtime that runs workloads as Kubernetes objects (logs come from it).
    workload_runtime: WorkloadRuntime | None = None
    metrics: CollectorRegistry = field(default_factory=CollectorRegistry)
    usage: Usage | None = None
    history: History | None = None
    extra: dict[str, object] = field(default_factory=dict)
    exposition: Exposition = field(init=False)

    def __post_init__(self) -> None:
        self.exposition = Exposition(self.metrics)


def app_state(request: Request) -> AppState:
    state: AppState = request.app.state.llmos
    return state
