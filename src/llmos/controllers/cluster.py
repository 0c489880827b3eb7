"""Cluster-mode reconcilers: LLMOS objects run by a :class:`WorkloadRuntime` (Kubernetes).

In cluster mode Kubernetes schedules GPUs, fetches models (an init container),
restarts and probes. So one reconciler per kind here hands the whole object to
the runtime (``apply``), reads back how its children are doing (``observe``)
and writes that as the object's status: phase, ready counts, endpoints (which
the gateway routes to), conditions, and an Event for each thing that happened
to a pod (Scheduled, Downloading, Started, Ready, BackOff, OOMKilled, Evicted).
The runtime's watches wake the reconciler when a child changes; deletion
cascades through owner references, except that a Volume still in use keeps its
finalizer, as in embedded mode.

Notebooks are culled when idle as in embedded mode
(:mod:`llmos.controllers.notebook_idle`): a Ready notebook unused for
``spec.idleTimeoutMinutes`` is applied as a stopped one (its StatefulSet scaled
to 0; its home claim and token stay) and turns ``Idle`` with a ``Culled``
Event. The proxy wakes it through :class:`~llmos.controllers.notebook_idle.Activity`
on this server, or from another server replica by writing its
``status.lastActivityTime`` (:meth:`ClusterReconciler.woken_by`).
"""

from __future__ import annotations

import contextlib
import logging
from typing import Any

from llmos._lib.errors import LLMOSError, Reason
from llmos.controllers.events import EventRecorder
from llmos.controllers.external_endpoint import external_status
from llmos.controllers.hftoken import SECRETS, hf_token, users_of_secret
from llmos.controllers.loop import ObjectKey, Related
from llmos.controllers.notebook_idle import (
    Activity,
    IdleClock,
    JupyterReach,
    check_every,
    idle_timeout,
)
from llmos.controllers.volume import FINALIZER as VOLUME_FINALIZER
from llmos.controllers.volume import MOUNTERS, mounted_by, users_of
from llmos.engines.base import EngineError
from llmos.resources.meta import set_condition
from llmos.runtime.base import Observed, WorkloadRuntime
from llmos.store.base import ResourceStore, WatchEvent

log = logging.getLogger(__name__)

RESOURCES = {
    "ModelService": "modelservices.ml.llmos.ai",
    "Notebook": "notebooks.ml.llmos.ai",
    "MLCluster": "mlclusters.ml.llmos.ai",
    "Volume": "volumes.ml.llmos.ai",
}
RESYNC_SECONDS = 60.0


class ClusterReconciler:
    """Keeps one kind's objects running on the cluster and their status true."""

    def __init__(
        self,
        kind: str,
        store: ResourceStore,
        runtime: WorkloadRuntime,
        events: EventRecorder,
        *,
        activity: Activity | None = None,
        jupyter: JupyterReach | None = None,
    ) -> None:
        self.kind = kind
        self.resource = RESOURCES[kind]
        self.store = store
        self.runtime = runtime
        self.events = events
        # Happenings already recorded as Events, by object uid.
        self._told: dict[str, set[str]] = {}
        self.related: dict[str, Related] = {}
        # Notebooks: the proxy's traffic (through ``activity``) and Jupyter's own.
        # Other replicas' traffic reaches this one only through the status: ``shared``.
        self.idle = IdleClock(activity or Activity(), events, shared=True)
        self._jupyter = jupyter
        if kind == "ModelService":
            self.related[SECRETS] = self._users_of_secret
        if kind == "Volume":
            self.related.update({resource: mounted_by for resource in MOUNTERS})

    async def _users_of_secret(self, event: WatchEvent) -> list[ObjectKey]:
        return await users_of_secret(self.store, event)

    async def reconcile(self, key: ObjectKey) -> float | None:
        obj = await self.store.get(self.resource, key.namespace, key.name)
        meta = obj["metadata"]
        if meta.get("deletionTimestamp"):
            self._told.pop(meta["uid"], None)
            if self.kind == "Volume":
                return await self._release_volume(obj)
            return None  # the children go with it (owner references)
        status: dict[str, Any] = dict(obj.get("status") or {})
        generation = meta.get("generation")
        if self.kind == "ModelService" and obj["spec"].get("endpoint"):
            await self.runtime.apply(obj)  # nothing runs in the cluster: remove what did
            return await self._external(obj, status, generation)
        culled = self.kind == "Notebook" and await self._culled(obj, status)
        try:
            token = await hf_token(self.store, obj) if self.kind == "ModelService" else None
            # A culled notebook is applied as a stopped one: its StatefulSet scales to 0.
            await self.runtime.apply(_stopped(obj) if culled else obj, hf_token=token)
        except EngineError as exc:
            return await self._fail(obj, status, "ModelAvailable", "TokenUnavailable", str(exc))
        except LLMOSError as exc:
            if exc.reason == Reason.INVALID and self.kind == "ModelService":
                # The only spec Kubernetes cannot be given: a model the nodes cannot fetch.
                return await self._fail(obj, status, "ModelAvailable", "ModelUnavailable", str(exc))
            if exc.reason in (Reason.SERVICE_UNAVAILABLE, Reason.INVALID):
                return await self._fail(obj, status, "Applied", "ApplyFailed", str(exc))
            raise
        if culled:
            return await self._cull(obj, status)
        observed = await self.runtime.observe(obj)
        if self.kind == "Volume":
            status["usedBy"] = await users_of(self.store, key.namespace, key.name)
        await self._tell(obj, observed)
        before = status.get("phase")
        self._write(status, observed, generation)
        if self.kind == "Notebook":
            if status["phase"] == "Ready":
                self.idle.ready(status, was_ready=before == "Ready")
            self.idle.fold(obj, status)
        await self._save(obj, status)
        timeout = idle_timeout(obj) if self.kind == "Notebook" else None
        return check_every(timeout) if timeout else RESYNC_SECONDS

    async def _culled(self, nb: dict[str, Any], status: dict[str, Any]) -> bool:
        """Whether the notebook is to be (or stay) stopped for being idle."""
        if nb["spec"].get("stopped") or not idle_timeout(nb):
            return False
        phase = status.get("phase")
        if phase == "Ready" and self._jupyter is not None:
            reach = await self._jupyter(nb)
            if reach is not None:
                await self.idle.ask_jupyter(nb, *reach)
        # One still starting is left be: its idle clock runs from when it is ready.
        return phase in ("Ready", "Idle") and self.idle.overdue(nb, status)

    async def _cull(self, nb: dict[str, Any], status: dict[str, Any]) -> float | None:
        if status.get("phase") != "Idle":
            await self.idle.cull(nb, status)
            # Its gone pods' happenings are forgotten (its next pods' are new keys), but
            # not that it was told of here: nothing needs looking up again.
            self._told.get(nb["metadata"]["uid"], set()).clear()
        status.update(endpoint=None, observedGeneration=nb["metadata"].get("generation"))
        await self._save(nb, status)
        return None  # the proxy wakes it (Activity.wake, or woken_by)

    def woken_by(self, obj: dict[str, Any]) -> object:
        """A culled notebook's ``lastActivityTime``: written by the proxy to start it again.

        The controller loop reconciles on a change of this (not of the rest of the
        status, which is this reconciler's own), so a server replica that does not
        run the controllers can wake the notebook.
        """
        status = obj.get("status") or {}
        if self.kind == "Notebook" and status.get("phase") == "Idle":
            return status.get("lastActivityTime")
        return None

    async def _tell(self, obj: dict[str, Any], observed: Observed) -> None:
        uid = obj["metadata"]["uid"]
        # New to this process (a server start, or a new leader): what an earlier
        # server already recorded is not told again.
        told = self._told.get(uid)
        fresh = told is None
        told = set() if told is None else told
        for happening in observed.happenings:
            if happening.key in told:
                continue
            if not (fresh and await self.events.exists(obj, happening.reason, happening.message)):
                await self.events.record(obj, happening.reason, happening.message, happening.type)
            told.add(happening.key)
        self._told[uid] = told  # only now: a look that failed half-way is made again

    def _write(self, status: dict[str, Any], observed: Observed, generation: int | None) -> None:
        status["phase"], status["message"] = observed.phase, observed.message
        status["observedGeneration"] = generation
        for kind, (value, reason, message) in observed.conditions.items():
            set_condition(
                status, kind, value, reason, message, generation if kind == "Ready" else None
            )
        if self.kind == "ModelService":
            status.update(
                replicas=observed.replicas,
                readyReplicas=observed.ready,
                endpoints=observed.endpoints,
            )
        elif self.kind == "Notebook":
            # Where users open it, and where the workload proxy reaches its ready pod.
            status["url"] = observed.extra.get("url")
            ready = observed.phase == "Ready" and observed.endpoints
            status["endpoint"] = observed.endpoints[0] if ready else None
        elif self.kind == "Volume":
            status["capacity"] = observed.extra.get("capacity") or status.get("capacity")
        elif self.kind == "MLCluster":
            # Its Ray nodes (KubeRay's pods), worker groups, and where the dashboard is.
            status["nodes"] = observed.extra.get("nodes") or []
            status["workerGroups"] = observed.extra.get("workerGroups") or []
            for name in ("dashboardUrl", "rayVersion"):
                if observed.extra.get(name):
                    status[name] = observed.extra[name]

    async def _external(
        self, ms: dict[str, Any], status: dict[str, Any], generation: int | None
    ) -> float | None:
        await external_status(ms, status, generation)
        await self._save(ms, status)
        return 30.0

    async def _release_volume(self, vol: dict[str, Any]) -> float | None:
        """Let a deleted Volume go once nothing mounts it (its PVC goes with it)."""
        meta = vol["metadata"]
        if VOLUME_FINALIZER not in meta.get("finalizers", []):
            return None
        users = await users_of(self.store, meta["namespace"], meta["name"])
        if users:
            status = dict(vol.get("status") or {})
            message = "in use by " + ", ".join(users) + ": delete or change them first"
            set_condition(status, "InUse", True, "InUse", message)
            status["message"] = message
            await self._save(vol, status)
            return 5.0
        meta["finalizers"] = [f for f in meta["finalizers"] if f != VOLUME_FINALIZER]
        await self.store.update(self.resource, vol)
        return None

    async def _fail(
        self, obj: dict[str, Any], status: dict[str, Any], condition: str, reason: str, message: str
    ) -> float | None:
        generation = obj["metadata"].get("generation")
        set_condition(status, condition, False, reason, message)
        set_condition(status, "Ready", False, reason, message, generation)
        status.update(phase="Failed", message=message)
        if self.kind == "ModelService":
            status.update(readyReplicas=0, endpoints=[])
        if self.kind == "Notebook":
            status["endpoint"] = None
        await self.events.record(obj, reason, message, "Warning")
        await self._save(obj, status)
        return 30.0

    async def _save(self, obj: dict[str, Any], status: dict[str, Any]) -> None:
        if status == (obj.get("status") or {}):
            return
        try:
            await self.store.update_status(self.resource, {**obj, "status": status})
        except LLMOSError as exc:
            if exc.reason in (Reason.CONFLICT, Reason.NOT_FOUND):
                return  # changed or gone meanwhile: the next reconcile writes
            log.warning("could not write the status of %s: %s", self.kind, exc)


def _stopped(nb: dict[str, Any]) -> dict[str, Any]:
    return {**nb, "spec": {**nb["spec"], "stopped": True}}


SNAPSHOTS = "volumesnapshots.ml.llmos.ai"
SNAPSHOTS_UNSUPPORTED = (
    "VolumeSnapshots are not available in cluster mode yet (they would be CSI "
    "VolumeSnapshots of the Volume's PVC); copy the files with a Notebook or a job instead"
)


class SnapshotsUnsupported:
    """Cluster mode: a VolumeSnapshot says plainly that it will not be taken."""

    resource = SNAPSHOTS

    def __init__(self, store: ResourceStore, events: EventRecorder) -> None:
        self.store = store
        self.events = events

    async def reconcile(self, key: ObjectKey) -> float | None:
        snapshot = await self.store.get(SNAPSHOTS, key.namespace, key.name)
        status = dict(snapshot.get("status") or {})
        if status.get("phase") == "Failed" or snapshot["metadata"].get("deletionTimestamp"):
            return None
        set_condition(status, "Ready", False, "Unsupported", SNAPSHOTS_UNSUPPORTED)
        status.update(phase="Failed", message=SNAPSHOTS_UNSUPPORTED, readyToUse=False)
        await self.events.record(snapshot, "Unsupported", SNAPSHOTS_UNSUPPORTED, "Warning")
        with contextlib.suppress(LLMOSError):
            await self.store.update_status(SNAPSHOTS, {**snapshot, "status": status})
        return None
