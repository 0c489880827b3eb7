"""Notebooks: one supervised JupyterLab (or VS Code, or RStudio) process each, reached only
through ``https://HOST:8443/notebooks/{ns}/{name}/``.

Each process binds to 127.0.0.1 on a port the runtime allocates and requires
a secret that only this server knows (an HMAC of the notebook's uid with a
key kept in the data dir): the proxy adds it to every request it forwards
(Jupyter's token header, code-server's session cookie), so the secret never
reaches a browser (Jupyter's pages would show its token: it runs with
:mod:`llmos.runtime.jupyter_identity` instead). The working dir is the first volume
(or a directory of the notebook's own under the data dir).

Idle culling (:mod:`llmos.controllers.notebook_idle`): with
``spec.idleTimeoutMinutes``, a notebook that has seen no traffic through the
proxy (and, for Jupyter, no kernel activity) for that long has its process
stopped (phase ``Idle``, an Event ``Culled``); the next request through the
proxy starts it again and waits until it is ready. ``spec.stopped: true``
stops it for good until set back.

GPUs: ``spec.resources`` (``gpu``, ``gpuMemory``, ``gpuPlacement``) is placed
like a ModelService replica's, through the shared
:class:`~llmos.controllers.gpuplacement.ReplicaPlacer` (allocation replica 0):
the process sees its GPUs in ``CUDA_VISIBLE_DEVICES``; a notebook that does
not fit is not started and stays Pending with a ``FailedScheduling`` Warning,
retried every 10 s. A stopped, culled or deleted notebook frees its GPUs.

Isolation (:mod:`llmos.controllers.isolation`): the process runs in a sandbox
that shows it its volumes and home, and hides the server's data and other
workloads; its ``Isolated`` condition says whether it does, and why not.

Events: the notebook's process is a replica like a ModelService's: Started,
Ready, Unhealthy, BackOff and OOMKilled come from
:class:`~llmos.controllers.replica_events.ReplicaEvents`.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

from llmos._lib.errors import LLMOSError, Reason
from llmos._lib.keys import ServerKey
from llmos.controllers.errors import PermanentError
from llmos.controllers.events import EventRecorder
from llmos.controllers.gpualloc import GPUAllocator, GPUPlacement
from llmos.controllers.gpudevices import GPUDEVICES
from llmos.controllers.gpuplacement import Member, ReplicaPlacer, owners_on, reservation
from llmos.controllers.isolation import Isolation, Unisolated
from llmos.controllers.loop import ObjectKey, Related
from llmos.controllers.nodealloc import NodeAllocator
from llmos.controllers.notebook_idle import (
    Activity,
    IdleClock,
    base_path,
    check_every,
    idle_timeout,
)
from llmos.controllers.notebook_launch import LAUNCHERS, Launch, NotebookUnavailable, login_shell
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
from llmos.runtime.base import HealthCheck, Limits, Phase, ReplicaSpec, ReplicaStatus, Runtime
from llmos.runtime.local.sandbox import Confinement
from llmos.store.base import ResourceStore

NOTEBOOKS = "notebooks.ml.llmos.ai"
NOTEBOOK = "the notebook"  # how its Events name its one replica
SCHEDULING_RETRY_SECONDS = 10.0


def replica_prefix(namespace: str, name: str) -> str:
    """What the key of a Notebook's replica starts with."""
    return f"notebooks/{namespace}/{name}/"


def replica_key(namespace: str, name: str) -> str:
    return replica_prefix(namespace, name) + "0"


class NotebookReconciler:
    resource = NOTEBOOKS

    def __init__(
        self,
        store: ResourceStore,
        runtime: Runtime,
        storage: Storage,
        events: EventRecorder,
        activity: Activity | None = None,
        *,
        gpus: GPUAllocator | None = None,
        node: NodeAllocator | None = None,
        isolation: Isolation | None = None,
    ) -> None:
        self.store = store
        self.runtime = runtime
        self.isolation = isolation or Isolation(None, "off")
        self.storage = storage
        self.events = events
        self.activity = activity or Activity()
        self.idle = IdleClock(self.activity, events)
        self._key = ServerKey(storage.root / "notebooks" / ".key")
        self.replica_events = ReplicaEvents(events)
        self.placer = ReplicaPlacer(gpus, events, node)
        self.related: dict[str, Related] = {
            GPUDEVICES: owners_on("Notebook"),
            VOLUMES: waiting_for_it(store, NOTEBOOKS),
        }

    def secret(self, uid: str) -> str:
        """The notebook process's secret: stable for its uid, known only to this server."""
        return self._key.derive(uid)

    def home(self, namespace: str, name: str) -> Path:
        return self.storage.root / "notebooks" / namespace / name

    async def reconcile(self, key: ObjectKey) -> float | None:
        replica = replica_key(key.namespace, key.name)
        try:
            nb = await self.store.get(NOTEBOOKS, key.namespace, key.name)
        except LLMOSError as exc:
            if exc.reason == Reason.NOT_FOUND:
                await self._stop(key.namespace, key.name)  # deleted: its process goes too
                self.runtime.forget_logs(replica_prefix(key.namespace, key.name))  # and its logs
            raise
        meta, spec = nb["metadata"], nb["spec"]
        status = nb.get("status") or {}
        generation = meta.get("generation")
        status.update(url=base_path(key.namespace, key.name), observedGeneration=generation)
        if meta.get("deletionTimestamp") or spec.get("stopped"):
            await self._stop(key.namespace, key.name)
            if meta.get("deletionTimestamp"):
                self.runtime.forget_logs(replica_prefix(key.namespace, key.name))
            status.update(phase="Stopped", message="stopped (spec.stopped is true)")
            set_condition(status, "Ready", False, "Stopped", status["message"], generation)
            return await self._save(nb, status)
        timeout = idle_timeout(nb)
        current = self.runtime.status(replica)
        running = current is not None and current.phase != Phase.STOPPED
        if timeout and running and current is not None and current.port:
            origin = f"http://127.0.0.1:{current.port}"
            await self.idle.ask_jupyter(nb, origin, self.secret(meta["uid"]))
        if self.idle.overdue(nb, status):
            if running and current is not None and current.ready:
                await self._stop(key.namespace, key.name)
                await self.idle.cull(nb, status)
                return await self._save(nb, status)
            if not running and status.get("phase") == "Idle":
                return None  # culled: the next visit through the proxy starts it
            # Still starting: the idle clock runs from when it is ready.
        try:
            launch, cwd = await self._launch(nb)
            self.isolation.check(status, generation)
        except PermanentError as exc:
            await self._stop(key.namespace, key.name)
            unavailable = isinstance(exc, NotebookUnavailable | Unisolated)
            reason = "NotAvailable" if unavailable else "Invalid"
            status.update(phase="Unavailable" if reason == "NotAvailable" else "Failed")
            status["message"] = str(exc)
            set_condition(status, "Ready", False, reason, str(exc), generation)
            await self._save(nb, status)
            return None
        try:
            request = gpu_request(spec.get("resources"))
            policy = placement(spec.get("resources"))
        except GPUError as exc:
            await self._stop(key.namespace, key.name)
            status.update(phase="Failed", message=str(exc))
            set_condition(status, "Ready", False, "InvalidResources", str(exc), generation)
            await self.events.record(nb, "InvalidResources", str(exc), "Warning")
            return await self._save(nb, status)
        members = [Member(0, NOTEBOOK, request, policy, reservation(spec.get("resources")))]
        scheduling = await self.placer.place(nb, status, members)
        if scheduling.shortfall:
            await self.runtime.remove(replica)
            self.replica_events.forget(replica)
            status.update(phase="Pending", message=scheduling.shortfall)
            set_condition(
                status, "Ready", False, scheduling.reason, scheduling.shortfall, generation
            )
            await self._save(nb, status)
            return SCHEDULING_RETRY_SECONDS
        launch = dataclasses.replace(launch, env={**launch.env, **scheduling.env(0)})
        current = self.runtime.status(replica)
        if current is None or current.phase == Phase.STOPPED:
            self.idle.started(status)  # a fresh start is activity
        placed = scheduling.placed[0]
        result = await self.runtime.ensure(self._replica(nb, launch, cwd, placed))
        if result.ready:
            self.idle.ready(status, was_ready=status.get("phase") == "Ready")
        await self.replica_events.observe(nb, NOTEBOOK, result, at=status["url"])
        self._summarize(status, result, generation)
        status["workingDir"] = str(cwd)
        self.idle.fold(nb, status)
        await self._save(nb, status)
        return check_every(timeout) if timeout else None

    async def _launch(self, nb: dict[str, Any]) -> tuple[Launch, Path]:
        meta, spec = nb["metadata"], nb["spec"]
        namespace, name = meta["namespace"], meta["name"]
        mounted = await mounts(self.store, self.storage, namespace, spec.get("volumes") or [])
        home = self.home(namespace, name)
        cwd = mounted[0].path if mounted else home / "work"
        for folder in (home, cwd):
            folder.mkdir(parents=True, exist_ok=True)
        launcher = LAUNCHERS[spec.get("type", "jupyter")]
        user = self.isolation.user()
        launch = launcher(base_path(namespace, name), cwd, self.secret(meta["uid"]), home, user)
        # Defaults the launcher's env and the spec's may replace: a terminal's shell, and in
        # the sandbox, which hides the server's home, the notebook's own home (it persists)
        # and its user (not the server's: nobody, in a root server's).
        defaults = {"SHELL": login_shell(runs=self.isolation.shows)}
        if self.isolation.active:
            defaults.update(HOME=str(home), USER=user, LOGNAME=user)
        env = {**defaults, **launch.env, **workload_env(mounted, spec.get("env"))}
        writable, readable = by_access(mounted)
        launch = dataclasses.replace(
            launch, env=env, readable=(*launch.readable, *readable), writable=(home, *writable)
        )
        return launch, cwd

    async def _stop(self, namespace: str, name: str) -> None:
        """Stop its process and free its GPUs."""
        replica = replica_key(namespace, name)
        await self.runtime.remove(replica)
        self.replica_events.forget(replica)
        await self.placer.release(("Notebook", namespace, name))

    def _replica(
        self, nb: dict[str, Any], launch: Launch, cwd: Path, placed: GPUPlacement | None
    ) -> ReplicaSpec:
        meta, env = nb["metadata"], launch.env
        gpus = bool(env.get("CUDA_VISIBLE_DEVICES"))
        confinement = Confinement(launch.writable, launch.readable, gpus=gpus, cwd=cwd)
        return ReplicaSpec(
            key=replica_key(meta["namespace"], meta["name"]),
            command=self.isolation.command(launch.command, confinement),
            env=tuple(sorted(env.items())),
            cwd=cwd,
            health=HealthCheck(path=launch.health, startup_timeout_seconds=120),
            grace_seconds=5.0,
            owner=("Notebook", meta["namespace"], meta["name"]),
            limits=Limits.of(nb["spec"].get("resources")),
            gpu_shares=placed.shares if placed is not None else (),
            label=NOTEBOOK,
        )

    def _summarize(
        self, status: dict[str, Any], result: ReplicaStatus, generation: int | None
    ) -> None:
        if result.ready:
            phase, message = "Ready", f"open {status['url']}"
        elif result.phase == Phase.CRASHLOOP:
            tail = "\n".join(result.last_lines[-5:])
            phase, message = "CrashLoop", f"the notebook keeps exiting; last lines:\n{tail}"
        else:
            phase, message = "Starting", "starting"
        status.update(phase=phase, message=message)
        set_condition(status, "Ready", result.ready, phase, message, generation)

    async def _save(self, nb: dict[str, Any], status: dict[str, Any]) -> float | None:
        nb["status"] = status
        await self.store.update_status(NOTEBOOKS, nb)
        return None
