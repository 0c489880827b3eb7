"""The store the server runs on: SQLite in the data dir, or LLMOS's CRDs in a cluster.

``api.server`` calls :func:`open_store` first thing at start-up (``--store``).
"""

from __future__ import annotations

import logging
from pathlib import Path

from llmos._lib.errors import Reason
from llmos.api.config import ServerConfig
from llmos.store.base import ResourceStore
from llmos.store.errors import StoreError
from llmos.store.kube.client import SERVICE_ACCOUNT, KubeConnection
from llmos.store.kube.store import KubeStore
from llmos.store.sqlite.store import SqliteStore

INSTALLED_KUBECONFIG = Path("/etc/llmos/kubeconfig.yaml")


async def open_store(config: ServerConfig) -> ResourceStore:
    if config.store == "sqlite":
        return await SqliteStore.open(
            config.db_path,
            history_seconds=config.watch_history_seconds,
            compact_interval=config.watch_compact_interval,
        )
    # httpx logs each request at INFO: one line per Kubernetes call would drown the log.
    logging.getLogger("httpx").setLevel(logging.WARNING)
    store = KubeStore(_connection(config.kubeconfig))
    try:
        missing = await store.missing_kinds()
    except BaseException:
        await store.close()
        raise
    if missing:
        await store.close()
        raise StoreError(
            f"the cluster at {store.client.connection.url} lacks the CRDs of "
            f"{', '.join(missing)}: install LLMOS into it (llmos install), or apply the CRDs "
            "that llmos.install.crds makes",
            Reason.SERVICE_UNAVAILABLE,
        )
    return store


def _connection(kubeconfig: Path | None) -> KubeConnection:
    if kubeconfig is not None:
        path = kubeconfig
    elif (SERVICE_ACCOUNT / "token").exists():
        return KubeConnection.in_cluster()
    else:
        path = INSTALLED_KUBECONFIG
    try:
        return KubeConnection.from_kubeconfig(path)
    except (OSError, KeyError, TypeError, AttributeError) as exc:
        raise StoreError(
            f"cannot read the kubeconfig {path} ({exc}): pass --kubeconfig with a kubeconfig "
            "that has a server, its certificate authority and a bearer token",
            Reason.BAD_REQUEST,
        ) from exc
