"""How many workers each group of an MLCluster wants: its spec, idle scale-down and scale-up.

Used by the MLCluster controller on every reconcile. ``workerGroups[].replicas``
is the wanted count, and a spec change resets every group to it. With
``idleTimeoutSeconds``, a cluster without running or pending jobs and with no
CPU or GPU in use for that long shrinks each group to ``minReplicas``; work
waiting for resources grows a group one worker at a time up to ``maxReplicas``
(default ``replicas``). The counts live in ``status.workerGroups[].desiredReplicas``
and the last use in ``status.lastActivityTime``, so both survive a server restart.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any

from llmos._lib import timefmt
from llmos.controllers.events import EventRecorder
from llmos.controllers.rayhead import ClusterView

ACTIVITY_WRITE_SECONDS = 30.0


class RayAutoscaler:
    def __init__(self, events: EventRecorder) -> None:
        self.events = events
        self._last_use: dict[tuple[str, str], float] = {}

    def forget(self, namespace: str, name: str) -> None:
        self._last_use.pop((namespace, name), None)

    async def desired(
        self,
        cluster: dict[str, Any],
        status: dict[str, Any],
        before: dict[str, Any],
        view: ClusterView | None,
    ) -> dict[str, int]:
        """Each worker group's wanted count now; records Scaled, ScaledDown and ScaledUp."""
        meta, spec = cluster["metadata"], cluster["spec"]
        ident = (meta["namespace"], meta["name"])
        now = time.time()
        recorded = timefmt.seconds_or_none(status.get("lastActivityTime"))
        last = self._last_use.get(ident)
        if last is None:
            last = now if recorded is None else recorded
        spec_changed = before.get("observedGeneration") != meta.get("generation")
        if spec_changed or (view is not None and view.busy):
            last = now  # a change of spec counts as use: never undo it at once
        self._last_use[ident] = last
        if recorded is None or last - recorded >= min(
            ACTIVITY_WRITE_SECONDS, float(spec.get("idleTimeoutSeconds") or 60) / 2
        ):
            status["lastActivityTime"] = timefmt.rfc3339(datetime.fromtimestamp(last, UTC))
        previous = {g["name"]: g for g in before.get("workerGroups") or []}
        timeout = spec.get("idleTimeoutSeconds")
        idle = bool(timeout) and view is not None and not view.busy and now - last >= timeout
        desired: dict[str, int] = {}
        for group in spec.get("workerGroups") or []:
            name, replicas = group["name"], group.get("replicas", 1)
            low = group.get("minReplicas", 0)
            high = group.get("maxReplicas")
            high = replicas if high is None else high
            old = previous.get(name)
            want = replicas if spec_changed or old is None else int(old["desiredReplicas"])
            want = max(low, min(high, want))
            if idle and want > low:
                message = f"idle for {int(now - last)} s: worker group {name} {want} -> {low}"
                await self.events.record(cluster, "ScaledDown", message)
                want = low
            elif (
                view is not None
                and view.waiting
                and want < high
                and old is not None
                and old.get("readyReplicas", 0) >= want
            ):
                message = f"work waits for resources: worker group {name} {want} -> {want + 1}"
                await self.events.record(cluster, "ScaledUp", message)
                want += 1
                self._last_use[ident] = now
            elif old is not None and spec_changed and int(old["desiredReplicas"]) != want:
                message = f"worker group {name}: {old['desiredReplicas']} -> {want} workers"
                await self.events.record(cluster, "Scaled", message)
            desired[name] = want
        return desired
