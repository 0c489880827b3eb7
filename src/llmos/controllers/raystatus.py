"""An MLCluster's status from its processes and what its head says: nodes, groups, phase.

Used by the MLCluster controller at the end of each reconcile.
"""

from __future__ import annotations

from typing import Any

from llmos.controllers.rayhead import ClusterView
from llmos.controllers.raynodes import Slots
from llmos.resources.meta import set_condition
from llmos.runtime.base import Phase, ReplicaStatus


def summarize(
    cluster: dict[str, Any],
    status: dict[str, Any],
    *,
    prefix: str,
    slots: Slots,
    head: ReplicaStatus,
    workers: dict[str, ReplicaStatus | None],
    view: ClusterView | None,
    unreachable: str,
    desired: dict[str, int],
    jobs_api: bool,
) -> None:
    """Fill ``status`` (nodes, workerGroups, resources, phase, message, Ready condition).

    A worker counts as ready once its process is and, when the head answered, Ray
    lists it alive; ``prefix`` is the cluster's replica-key prefix. The cluster is
    Ready once every node is and ``jobs_api``: its head's Jobs API has answered.
    """
    spec, generation = cluster["spec"], cluster["metadata"].get("generation")

    def node(key: str, result: ReplicaStatus | None) -> dict[str, Any]:
        slot = slots.get(key)
        entry: dict[str, Any] = {
            "name": key.removeprefix(prefix),
            "phase": result.phase.value if result is not None else "Pending",
        }
        if slot is not None:
            entry["ip"] = slot.ip
            if view is not None:
                entry["rayState"] = "ALIVE" if view.alive(slot.ip) else "DEAD"
        return entry

    status["nodes"] = [node(head.key, head)] + [node(k, r) for k, r in workers.items()]

    def joined(key: str, result: ReplicaStatus | None) -> bool:
        slot = slots.get(key)
        if result is None or not result.ready or slot is None:
            return False
        return view is None or view.alive(slot.ip)

    groups = []
    ready_workers = 0
    for group in spec.get("workerGroups") or []:
        name = group["name"]
        ready = len(
            [
                key
                for key, result in workers.items()
                if key.removeprefix(prefix).rsplit("-", 1)[0] == name and joined(key, result)
            ]
        )
        ready_workers += ready
        groups.append({"name": name, "desiredReplicas": desired[name], "readyReplicas": ready})
    status["workerGroups"] = groups
    if view is not None:
        status["totalResources"] = view.total
        status["availableResources"] = view.available
    wanted = sum(desired.values())
    if head.phase == Phase.CRASHLOOP:
        tail = "\n".join(head.last_lines[-5:])
        phase, message = "CrashLoop", f"the Ray head keeps exiting; last lines:\n{tail}"
    elif not head.ready:
        phase, message = "Starting", "starting the Ray head"
    elif unreachable:
        phase, message = "Starting", unreachable
    elif ready_workers < wanted:
        phase = "Starting"
        message = f"head ready; {ready_workers}/{wanted} workers ready"
    elif not jobs_api:
        phase, message = "Starting", "Ray nodes ready; waiting for the head's Jobs API"
    else:
        phase = "Ready"
        message = f"{1 + wanted} Ray node(s) ready; dashboard at {status['dashboardUrl']}"
    ready = phase == "Ready"
    status.update(phase=phase, message=message)
    set_condition(status, "Ready", ready, phase, message, generation)
