"""The start-up sweep of embedded mode: what the previous server showed as Ready reads as
starting again until its controller says otherwise; nothing else changes."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from llmos.controllers import mlcluster, modelservice, notebook
from llmos.controllers.restarted import RESTARTING, mark_restarting
from llmos.resources.meta import set_condition
from llmos.store.sqlite.store import SqliteStore


def _object(kind: str, name: str, spec: dict[str, Any]) -> dict[str, Any]:
    meta = {"name": name, "namespace": "default"}
    return {"apiVersion": "ml.llmos.ai/v1", "kind": kind, "metadata": meta, "spec": spec}


def _status(phase: str, ready: bool, **more: Any) -> dict[str, Any]:
    status: dict[str, Any] = {"phase": phase, "message": "as the old server left it", **more}
    set_condition(status, "Ready", ready, phase, "as the old server left it", 1)
    return status


def test_what_ran_reads_as_starting_after_a_restart(tmp_path: Path) -> None:
    ms, nb, ray = modelservice.MODELSERVICES, notebook.NOTEBOOKS, mlcluster.MLCLUSTERS
    serving = {"readyReplicas": 1, "replicas": 1, "endpoints": ["http://127.0.0.1:40001"]}
    external = {"readyReplicas": 1, "replicas": 1, "endpoints": ["http://10.0.0.9:8000"]}
    objects = [
        (ms, "ModelService", "served", {"model": "bundled:smollm2"}, _status("Ready", True, **serving)),
        (ms, "ModelService", "outside", {"endpoint": "http://10.0.0.9:8000"}, _status("Ready", True, **external)),
        (ms, "ModelService", "broken", {"model": "bundled:smollm2"}, _status("CrashLoop", False)),
        (nb, "Notebook", "lab", {}, _status("Ready", True)),
        (nb, "Notebook", "culled", {}, _status("Idle", False)),
        (ray, "MLCluster", "ray", {}, _status("Ready", True)),
        (ray, "MLCluster", "new", {}, None),  # no status yet
    ]  # fmt: skip

    async def main() -> dict[str, dict[str, Any]]:
        store = await SqliteStore.open(tmp_path / "db")
        try:
            for resource, kind, name, spec, status in objects:
                created = await store.create(resource, _object(kind, name, spec))
                if status is not None:
                    await store.update_status(resource, {**created, "status": status})
            assert await mark_restarting(store) == 3
            assert await mark_restarting(store) == 0  # nothing Ready is left to mark
            return {
                name: (await store.get(resource, "default", name)).get("status") or {}
                for resource, _kind, name, _spec, _status in objects
            }
        finally:
            await store.close()

    after = asyncio.run(main())
    for name in ("served", "lab", "ray"):
        status = after[name]
        assert (status["phase"], status["message"]) == ("Starting", RESTARTING), name
        (ready,) = status["conditions"]
        assert (ready["status"], ready["reason"]) == ("False", "ServerRestarted")
        assert ready["observedGeneration"] == 1
    # The gateway sees no replica of it until the new engine is ready.
    assert (after["served"]["readyReplicas"], after["served"]["endpoints"]) == (0, [])
    # An external endpoint runs nothing here; the rest were not Ready.
    assert after["outside"]["phase"] == "Ready" and after["outside"]["readyReplicas"] == 1
    assert after["broken"]["phase"] == "CrashLoop" and after["culled"]["phase"] == "Idle"
    assert after["new"] == {}
