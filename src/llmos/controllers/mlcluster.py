"""MLClusters: a Ray cluster of supervised processes on this machine, reached at
``https://HOST:8443/mlclusters/{ns}/{name}/dashboard/``.

The head is ``ray start --head --block`` and each worker ``ray start --address
HEAD --block``, each a replica of the shared runtime on a loopback IP and port
range of its own (:mod:`llmos.controllers.raynodes`; :mod:`raylaunch` builds
each node's command and environment), wrapped so that their
whole process tree dies with the server. Every process of a cluster carries
the cluster's Ray token (an HMAC of its uid with a key in the data dir; Ray's
own token auth, since its GCS and raylets listen on every interface); the
proxy adds it to requests, so it never reaches a user. The working dir is the
first volume (each volume is also ``LLMOS_VOLUME_<NAME>``).

Workers start once the head is ready and restart when the head does (they
carry its pid). Each reconcile (every 5 s while the cluster runs) reads the
head's dashboard for nodes, resources and jobs (:mod:`rayhead`), decides each
worker group's count (:mod:`rayscale`: spec, idle scale-down, scale-up) and
writes status (:mod:`raystatus`). A new head's Jobs API is warmed up at once,
so the first job submitted is not the one that waits for it; the cluster is
Ready once it answered.

GPUs: the head's and each worker group's ``resources`` (``gpu``, ``gpuMemory``,
``gpuPlacement``) are placed like ModelService replicas, through the shared
:class:`~llmos.controllers.gpuplacement.ReplicaPlacer`: the head is allocation
replica 0, worker ``i`` of the ``g``-th group (from 0) is ``1000 * (g + 1) + i``.
A placed node sees its GPUs in ``CUDA_VISIBLE_DEVICES`` and offers Ray as many
(``--num-gpus``; one for a share). A node that does not fit is not started; the
cluster is Pending with a ``FailedScheduling`` Warning naming the shortfall.

Events: each Ray node is a replica of its own ("the head", "worker cpu-1") whose
Started, Ready (at its IP), Unhealthy, BackOff and OOMKilled are recorded like a
ModelService replica's (:mod:`llmos.controllers.replica_events`); ``Ready`` also
marks the whole cluster becoming ready, and Scaled, ScaledDown and ScaledUp its
worker counts. Each node's log outlives its restarts and scale-downs; deleting the
cluster deletes them all.
"""

from __future__ import annotations

import asyncio
import copy
import dataclasses
from collections.abc import Callable
from pathlib import Path
from typing import Any

from llmos._lib.errors import LLMOSError, Reason
from llmos._lib.keys import ServerKey
from llmos.controllers.errors import PermanentError
from llmos.controllers.events import EventRecorder
from llmos.controllers.gpualloc import GPUAllocator
from llmos.controllers.gpudevices import GPUDEVICES
from llmos.controllers.gpuplacement import (
    Member,
    ReplicaPlacer,
    Scheduling,
    owners_on,
    reservation,
)
from llmos.controllers.isolation import Isolation, Unisolated
from llmos.controllers.loop import ObjectKey, Related
from llmos.controllers.nodealloc import NodeAllocator
from llmos.controllers.rayhead import ClusterView, HeadUnreachable, JobsWarmUp, read_cluster
from llmos.controllers.raylaunch import RayLauncher, Where
from llmos.controllers.raynodes import RayUnavailable, Slots, check_ray, node_label
from llmos.controllers.rayscale import RayAutoscaler
from llmos.controllers.raystatus import summarize
from llmos.controllers.raytemp import RayTempDirs
from llmos.controllers.replica_events import ReplicaEvents
from llmos.controllers.volume import (
    VOLUMES,
    Storage,
    by_access,
    mounts,
    waiting_for_it,
    workload_env,
)
from llmos.gpu.errors import GPUError
from llmos.gpu.request import gpu_request, placement
from llmos.resources.meta import set_condition
from llmos.runtime.base import ReplicaStatus, Runtime
from llmos.runtime.local.sandbox import Confinement
from llmos.store.base import ResourceStore

MLCLUSTERS = "mlclusters.ml.llmos.ai"
REFRESH_SECONDS = 5.0


def dashboard_path(namespace: str, name: str) -> str:
    return f"/mlclusters/{namespace}/{name}/dashboard/"


def cluster_prefix(namespace: str, name: str) -> str:
    return f"mlclusters/{namespace}/{name}/"


def head_key(namespace: str, name: str) -> str:
    return cluster_prefix(namespace, name) + "head"


def worker_key(namespace: str, name: str, group: str, index: int) -> str:
    return cluster_prefix(namespace, name) + f"{group}-{index}"


def worker_number(group_position: int, index: int) -> int:
    """The allocation replica number of worker ``index`` of the cluster's group at that position."""
    return 1000 * (group_position + 1) + index


def _member(number: int, label: str, resources: dict[str, Any]) -> Member:
    try:
        return Member(
            number, label, gpu_request(resources), placement(resources), reservation(resources)
        )
    except GPUError as exc:
        raise PermanentError(f"{label}: {exc}") from exc


class MLClusterReconciler:
    resource = MLCLUSTERS

    def __init__(
        self,
        store: ResourceStore,
        runtime: Runtime,
        storage: Storage,
        events: EventRecorder,
        *,
        temp_root: Path | None = None,
        gpus: GPUAllocator | None = None,
        node: NodeAllocator | None = None,
        isolation: Isolation | None = None,
    ) -> None:
        self.store = store
        self.isolation = isolation or Isolation(None, "off")
        self.runtime = runtime
        self.storage = storage
        self.events = events
        self.slots = Slots()
        self._key = ServerKey(storage.root / "mlclusters" / ".key")
        # Ray puts unix sockets under its temp dir: keep the path short (108-byte limit).
        self.temp = RayTempDirs(storage.root, temp_root)
        self.replica_events = ReplicaEvents(events)
        self.autoscaler = RayAutoscaler(events)
        self.placer = ReplicaPlacer(gpus, events, node)
        self._numbers: dict[str, int] = {}  # replica key -> its allocation number
        self.related: dict[str, Related] = {
            GPUDEVICES: owners_on("MLCluster"),
            VOLUMES: waiting_for_it(store, MLCLUSTERS),
        }
        self.warmup = JobsWarmUp(self._jobs_api_answered)
        self.launch = RayLauncher(self.isolation, self.token, self.home)
        # Queues a cluster for a reconcile (set by the controller that owns this reconciler).
        self.wake: Callable[[str, str], None] | None = None

    def _jobs_api_answered(self, head: str) -> None:
        _, namespace, name, _ = head.split("/", 3)
        if self.wake is not None:
            self.wake(namespace, name)

    def token(self, uid: str) -> str:
        """The cluster's Ray token: stable for its uid, known only to this server."""
        return self._key.derive("ray:" + uid)

    async def sweep_temp(self) -> None:
        """Clear the Ray temp dirs this data dir's clusters left (call before any runs)."""
        await self.temp.sweep()

    def home(self, namespace: str, name: str) -> Path:
        return self.storage.root / "mlclusters" / namespace / name

    # -- reconcile -------------------------------------------------------------

    async def reconcile(self, key: ObjectKey) -> float | None:
        prefix = cluster_prefix(key.namespace, key.name)
        try:
            cluster = await self.store.get(MLCLUSTERS, key.namespace, key.name)
        except LLMOSError as exc:
            if exc.reason == Reason.NOT_FOUND:
                await self._stop_all(prefix)  # deleted: every process of it goes
                self.runtime.forget_logs(prefix)  # and every node's logs, scaled-away ones too
                self.autoscaler.forget(key.namespace, key.name)
                await self.temp.remove(key.namespace, key.name)
            raise
        meta, spec = cluster["metadata"], cluster["spec"]
        head_replica = head_key(key.namespace, key.name)
        status: dict[str, Any] = cluster.get("status") or {}
        before = copy.deepcopy(status)
        generation = meta.get("generation")
        status.update(
            dashboardUrl=dashboard_path(key.namespace, key.name), observedGeneration=generation
        )
        if meta.get("deletionTimestamp"):
            await self._stop_all(prefix)
            self.runtime.forget_logs(prefix)
            return None
        try:
            status["rayVersion"] = check_ray(spec.get("rayVersion"))
            self.isolation.check(status, generation)
            mounted = await mounts(
                self.store, self.storage, key.namespace, spec.get("volumes") or []
            )
            head_resources = (spec.get("head") or {}).get("resources") or {}
            head_member = _member(0, node_label(head_replica), head_resources)
            groups = [
                (group, _member(0, f"worker group {group['name']}", group.get("resources") or {}))
                for group in spec.get("workerGroups") or []
            ]
        except PermanentError as exc:
            return await self._fail(cluster, status, before, exc)
        home = self.home(key.namespace, key.name)
        cwd = mounted[0].path if mounted else home / "work"
        for folder in (home, cwd):
            folder.mkdir(parents=True, exist_ok=True)
        temp = self.temp.make(key.namespace, key.name)
        volumes = workload_env(mounted)
        # In the sandbox: its home, Ray's temp dir (its nodes' sockets) and its volumes.
        writable, readable = by_access(mounted)
        where = Where(Confinement((home, temp, *writable), readable, cwd=cwd), temp, volumes)
        status["workingDir"] = str(cwd)

        head_scheduling = await self.placer.place(cluster, status, [head_member])
        if head_scheduling.shortfall:
            await self._stop_all(prefix)
            return await self._pending(cluster, status, before, head_scheduling)
        self._numbers[head_replica] = 0
        head_slot = self.slots.allocate(head_replica)
        head = await self.runtime.ensure(
            self.launch.head(head_replica, cluster, head_slot, where, head_scheduling.placed[0])
        )
        view: ClusterView | None = None
        unreachable = ""
        if head.ready:
            self.warmup.start(head.key, head.pid, head_slot.agent_port, self.token(meta["uid"]))
            try:
                view = await read_cluster(head_slot.dashboard_port, self.token(meta["uid"]))
            except HeadUnreachable as exc:
                unreachable = str(exc)
        desired = await self.autoscaler.desired(cluster, status, before, view)
        wanted = {head_replica}
        workers: dict[str, ReplicaStatus | None] = {}
        keys, members, owned = [], [head_member], []
        for position, (group, template) in enumerate(groups):
            for index in range(desired[group["name"]]):
                replica = worker_key(key.namespace, key.name, group["name"], index)
                keys.append(replica)
                workers[replica] = self.runtime.status(replica)
                number = worker_number(position, index)
                label = node_label(replica)
                members.append(dataclasses.replace(template, number=number, label=label))
                owned.append(group)
        refused = None
        if head.ready and head.pid is not None:
            # Placed with the head, so that the Scheduled condition lists every node.
            scheduling = await self.placer.place(cluster, status, members)
            refused = scheduling if scheduling.shortfall else None
            for replica, group, member, placed in zip(
                keys, owned, members[1:], scheduling.placed[1:], strict=False
            ):
                wanted.add(replica)
                self._numbers[replica] = member.number
                slot = self.slots.allocate(replica)
                workers[replica] = await self.runtime.ensure(
                    self.launch.worker(
                        replica, cluster, group, slot, (head_slot, head.pid), where, placed
                    )
                )
            for replica in keys[max(len(scheduling.placed) - 1, 0) :]:
                workers[replica] = None  # did not fit: stopped below if it ran
        else:
            wanted.update(keys)
        extra = [k for k in self.runtime.keys(prefix) if k not in wanted]
        await asyncio.gather(*(self._stop(k) for k in extra))
        for replica, result in [(head.key, head), *workers.items()]:
            if result is not None:
                await self._record(cluster, replica, result)
        summarize(
            cluster,
            status,
            prefix=prefix,
            slots=self.slots,
            head=head,
            workers=workers,
            view=view,
            unreachable=unreachable,
            desired=desired,
            jobs_api=self.warmup.done(head.key, head.pid),
        )
        if refused:
            return await self._pending(cluster, status, before, refused)
        if status["phase"] == "Ready" and before.get("phase") != "Ready":
            await self.events.record(cluster, "Ready", status["message"])
        await self._save(cluster, status, before)
        return REFRESH_SECONDS

    # -- processes -------------------------------------------------------------

    async def close(self) -> None:
        """Cancel the warm-ups still under way (the controller stops)."""
        await self.warmup.close()

    async def _stop(self, key: str) -> None:
        self.warmup.forget(key)
        await self.runtime.remove(key)
        self.slots.release(key)
        self.replica_events.forget(key)
        number = self._numbers.pop(key, None)
        if number is not None:
            _, namespace, name, _ = key.split("/", 3)
            await self.placer.release(("MLCluster", namespace, name), replicas=[number])

    async def _stop_all(self, prefix: str) -> None:
        keys = self.runtime.keys(prefix)
        heads = [k for k in keys if k.endswith("/head")]
        # Workers first: a worker that loses its head first only logs errors.
        await asyncio.gather(*(self._stop(k) for k in keys if k not in heads))
        await asyncio.gather(*(self._stop(k) for k in heads))
        _, namespace, name = prefix.rstrip("/").split("/")
        await self.placer.release(("MLCluster", namespace, name))  # also what never started

    async def _pending(
        self,
        cluster: dict[str, Any],
        status: dict[str, Any],
        before: dict[str, Any],
        refused: Scheduling,
    ) -> float | None:
        """A node does not fit the GPUs: Pending with the shortfall, retried."""
        why = refused.shortfall or ""
        status.update(phase="Pending", message=why)
        generation = status["observedGeneration"]
        set_condition(status, "Ready", False, refused.reason, why, generation)
        await self._save(cluster, status, before)
        return REFRESH_SECONDS

    # -- status and Events -----------------------------------------------------

    async def _record(self, cluster: dict[str, Any], key: str, result: ReplicaStatus) -> None:
        slot = self.slots.get(key)
        await self.replica_events.observe(
            cluster, node_label(key), result, at=slot.ip if slot is not None else None
        )

    async def _fail(
        self,
        cluster: dict[str, Any],
        status: dict[str, Any],
        before: dict[str, Any],
        exc: PermanentError,
    ) -> float | None:
        meta = cluster["metadata"]
        await self._stop_all(cluster_prefix(meta["namespace"], meta["name"]))
        reason = exc.reason_code if isinstance(exc, RayUnavailable) else "Invalid"
        if isinstance(exc, Unisolated):
            reason = "NotAvailable"
        phase = "Unavailable" if reason == "NotAvailable" else "Failed"
        status.update(phase=phase, message=str(exc), nodes=[], workerGroups=[])
        set_condition(status, "Ready", False, reason, str(exc), meta.get("generation"))
        if before.get("message") != str(exc):
            await self.events.record(cluster, reason, str(exc), "Warning")
        await self._save(cluster, status, before)
        return None

    async def _save(
        self, cluster: dict[str, Any], status: dict[str, Any], before: dict[str, Any]
    ) -> None:
        if status == before:
            return  # nothing new: no write, no watch event
        cluster["status"] = status
        await self.store.update_status(MLCLUSTERS, cluster)
