"""The start-up sweep: logs of workloads that are gone go; the rest stay, and a store that
cannot list a kind deletes nothing of it."""

from __future__ import annotations

import asyncio
import contextlib
import sys
from pathlib import Path
from typing import Any

from llmos._lib.errors import LLMOSError, Reason
from llmos.controllers import mlcluster, model_replica, modelservice, notebook
from llmos.controllers.orphan_logs import WORKLOADS, forget_orphan_logs
from llmos.runtime.base import ReplicaSpec
from llmos.runtime.local import LocalRuntime
from llmos.runtime.local.logs import log_file_name
from llmos.store.sqlite.store import SqliteStore

PY = sys.executable
WAIT = "print('up', flush=True); import time; time.sleep(600)"


def _object(kind: str, name: str, spec: dict[str, Any]) -> dict[str, Any]:
    meta = {"name": name, "namespace": "default"}
    return {"apiVersion": "ml.llmos.ai/v1", "kind": kind, "metadata": meta, "spec": spec}


def test_every_workload_keys_its_replicas_under_its_root() -> None:
    prefixes = {resource: (root, prefix_of("ns", "n")) for resource, root, prefix_of in WORKLOADS}
    assert all(prefix.startswith(root) for root, prefix in prefixes.values())
    assert model_replica.replica_key("ns", "n", 2).startswith(
        prefixes[modelservice.MODELSERVICES][1]
    )
    assert notebook.replica_key("ns", "n").startswith(prefixes[notebook.NOTEBOOKS][1])
    for key in (mlcluster.head_key("ns", "n"), mlcluster.worker_key("ns", "n", "cpu", 1)):
        assert key.startswith(prefixes[mlcluster.MLCLUSTERS][1])
    # A prefix ends with "/": "n" does not own the replicas of "n2".
    assert not model_replica.replica_key("ns", "n2", 0).startswith(
        prefixes[modelservice.MODELSERVICES][1]
    )


def test_logs_of_deleted_workloads_go_at_start(tmp_path: Path) -> None:
    logs = tmp_path / "logs"
    logs.mkdir()
    keys = {
        "modelservices/default/live/0": True,
        "modelservices/default/live/5": True,  # scaled away, the object is there
        "notebooks/default/lab/0": True,
        "mlclusters/default/ray/head": True,
        "modelservices/default/gone/0": False,
        "notebooks/default/gone/0": False,
        "mlclusters/default/gone/cpu-1": False,
        "jobs/default/x/0": True,  # not a kind the sweep knows: left alone
    }
    for key in keys:
        (logs / log_file_name(key)).write_text("a line\n")
    (logs / (log_file_name("modelservices/default/gone/0") + ".2")).write_text("older\n")

    async def main() -> None:
        store = await SqliteStore.open(tmp_path / "db")
        runtime = LocalRuntime(tmp_path / "state", logs)
        await runtime.start()
        try:
            for resource, kind, name, spec in (
                (modelservice.MODELSERVICES, "ModelService", "live", {"model": "bundled:smollm2"}),
                (notebook.NOTEBOOKS, "Notebook", "lab", {}),
                (mlcluster.MLCLUSTERS, "MLCluster", "ray", {}),
            ):
                await store.create(resource, _object(kind, name, spec))
            # A replica that runs keeps its log, though no object owns it.
            orphan = "modelservices/default/running/0"
            spec = ReplicaSpec(orphan, (PY, "-c", WAIT), wants_port=False, health=None)
            await runtime.ensure(spec)
            async with contextlib.aclosing(runtime.logs(orphan, follow=True)) as lines:
                assert await asyncio.wait_for(anext(lines), 20) == "up"

            assert await forget_orphan_logs(store, runtime) == 3
            assert await forget_orphan_logs(store, runtime) == 0
            left = {path.name for path in logs.iterdir()}
            wanted = {log_file_name(key) for key, stays in keys.items() if stays}
            assert left == wanted | {log_file_name(orphan)}
        finally:
            await runtime.stop()
            await store.close()

    asyncio.run(main())


class Unlistable:
    """A store that cannot list Notebooks."""

    def __init__(self, store: SqliteStore) -> None:
        self.store = store

    async def list(self, resource: str, *args: Any, **kwargs: Any) -> Any:
        if resource == notebook.NOTEBOOKS:
            raise LLMOSError("the store is unavailable", Reason.SERVICE_UNAVAILABLE)
        return await self.store.list(resource, *args, **kwargs)


def test_a_kind_that_cannot_be_listed_keeps_its_logs(tmp_path: Path) -> None:
    logs = tmp_path / "logs"
    logs.mkdir()
    for key in ("notebooks/default/gone/0", "modelservices/default/gone/0"):
        (logs / log_file_name(key)).write_text("a line\n")

    async def main() -> None:
        store = await SqliteStore.open(tmp_path / "db")
        runtime = LocalRuntime(tmp_path / "state", logs)
        try:
            assert await forget_orphan_logs(Unlistable(store), runtime) == 1  # type: ignore[arg-type]
        finally:
            await store.close()

    asyncio.run(main())
    assert [path.name for path in logs.iterdir()] == [log_file_name("notebooks/default/gone/0")]
