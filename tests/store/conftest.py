"""A ``backend`` fixture: the same store tests run on SQLite and on the Kubernetes store.

Each test gets a namespace of its own, since the kube backend shares one API
server (tests/kubeplane.py) across the session. A test body is an async function
of the store; ``backend.run`` opens the store on a fresh event loop, runs it and
closes the store.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import pytest

from kubeplane import KubeCluster
from llmos.store.base import ResourceStore
from llmos.store.kube.client import KubeConnection
from llmos.store.kube.store import KubeStore
from llmos.store.sqlite.store import SqliteStore

T = TypeVar("T")


@dataclass
class Backend:
    name: str
    namespace: str
    open: Callable[[], Awaitable[Any]]

    def run(self, body: Callable[[Any], Awaitable[T]]) -> T:
        async def main() -> T:
            store = await self.open()
            try:
                return await body(store)
            finally:
                await store.close()

        return asyncio.run(main())

    async def old_revision(self, store: Any) -> int:
        """A revision the store no longer keeps history for (after two writes)."""
        if isinstance(store, SqliteStore):
            await store.compact()
            return 1
        return 1  # older than the API server's watch cache of any kind


def _kube_store(cluster: KubeCluster) -> Callable[[], Awaitable[ResourceStore]]:
    async def open_() -> ResourceStore:
        connection = KubeConnection(cluster.url, cluster.token, cluster.ca_file.read_bytes())
        return KubeStore(connection)

    return open_


def _sqlite_store(path: Path) -> Callable[[], Awaitable[ResourceStore]]:
    async def open_() -> ResourceStore:
        return await SqliteStore.open(path, history_seconds=0.0, compact_interval=3600.0)

    return open_


@pytest.fixture(params=["sqlite", "kube"])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Backend:
    namespace = f"t-{uuid.uuid4().hex[:10]}"
    if request.param == "sqlite":
        return Backend("sqlite", namespace, _sqlite_store(tmp_path / "db"))
    cluster: KubeCluster = request.getfixturevalue("kube_crds")
    return Backend("kube", namespace, _kube_store(cluster))
