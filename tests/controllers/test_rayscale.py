"""rayscale.RayAutoscaler: each worker group's count from the spec, idleness and waiting work."""

from __future__ import annotations

import asyncio
from typing import Any

from llmos.controllers.rayhead import ClusterView
from llmos.controllers.rayscale import RayAutoscaler


class Events:
    def __init__(self) -> None:
        self.recorded: list[tuple[str, str]] = []

    async def record(self, obj: dict[str, Any], reason: str, message: str, type: str = "") -> None:
        self.recorded.append((reason, message))


def cluster(generation: int = 1, **group: Any) -> dict[str, Any]:
    return {
        "metadata": {"namespace": "team", "name": "ray", "generation": generation},
        "spec": {
            "idleTimeoutSeconds": 60,
            "workerGroups": [{"name": "cpu", "replicas": 2, "minReplicas": 0, **group}],
        },
    }


def test_an_unreadable_last_activity_counts_as_none() -> None:
    # Users who may edit an MLCluster may write its status: junk there is not an error.
    events = Events()
    scaler = RayAutoscaler(events)  # type: ignore[arg-type]
    before = {"observedGeneration": 1, "workerGroups": [{"name": "cpu", "desiredReplicas": 2}]}
    status: dict[str, Any] = {"lastActivityTime": "last tuesday"}
    desired = asyncio.run(scaler.desired(cluster(), status, before, ClusterView()))
    assert desired == {"cpu": 2}  # counted from now: not idle yet
    assert status["lastActivityTime"] != "last tuesday"
    assert events.recorded == []


def test_idle_for_its_timeout_scales_down_and_waiting_work_scales_up() -> None:
    events = Events()
    scaler = RayAutoscaler(events)  # type: ignore[arg-type]
    before = {
        "observedGeneration": 1,
        "workerGroups": [{"name": "cpu", "desiredReplicas": 2, "readyReplicas": 2}],
    }
    idle = {"lastActivityTime": "2020-01-01T00:00:00Z"}
    assert asyncio.run(scaler.desired(cluster(), idle, before, ClusterView())) == {"cpu": 0}
    assert events.recorded[-1][0] == "ScaledDown"
    waiting = ClusterView(waiting=True)
    fresh = RayAutoscaler(events)  # type: ignore[arg-type]
    up = asyncio.run(fresh.desired(cluster(maxReplicas=3), {}, before, waiting))
    assert up == {"cpu": 3} and events.recorded[-1][0] == "ScaledUp"
