"""ModelServiceReconciler: resolve the model, pick the engine, keep N replicas serving it.

Reads the ModelService, makes its model available locally (bundled, local
path, or a background Hugging Face or ModelScope download with progress in
status), picks an engine, and asks the runtime to keep ``spec.replicas``
replicas running. Status mirrors the replicas: ready count, endpoints, phase and conditions.
Events tell the lifecycle: Scheduled, Downloading (and Downloaded), Started,
Ready, Unhealthy, BackOff, OOMKilled (a replica's exit that the runtime
judged an out-of-memory kill, with its last lines; these five from
:class:`~llmos.controllers.replica_events.ReplicaEvents`, shared with Notebooks
and MLClusters) and Evicted (its GPU turned Unhealthy or went away). A finalizer stops the replicas before the
object goes and deletes their logs, which outlive restarts and scale-downs until then;
its download stops then too, unless another ModelService still wants it
(:meth:`~llmos.controllers.downloads.Downloads.release`).

``spec.hfTokenSecret`` names a Secret in the same namespace whose ``token`` key
holds a Hugging Face token: it is sent with the download and given to the
engine as ``HF_TOKEN``; for a ModelScope model it is sent to ModelScope as its
token, and the engine does not get it. The controller watches Secrets too, so
creating or changing the one a ModelService names reconciles it at once.

GPUs: ``spec.resources`` (``gpu``, ``gpuMemory``, ``gpuPlacement``) is placed
replica by replica through the :class:`~llmos.controllers.gpuplacement.ReplicaPlacer`
(shared with Notebooks and MLClusters) before anything starts. A replica that
does not fit stays unstarted, the ModelService is Pending with a ``FailedScheduling`` Warning naming the
shortfall, and it is retried every 10 s; a placed one gets its GPUs in
``CUDA_VISIBLE_DEVICES`` and its share as the engine's memory limit. The
model's estimated GPU memory is reported in ``status.gpuMemoryEstimate``.

Engine keys: with ``keys`` (embedded mode), each replica gets its
ModelService's key (:mod:`llmos.engines.keys`) in the engine's ``key_env``, so
it answers only the gateway.

Isolation: with ``isolation`` (embedded mode), llama.cpp and transformers
replicas run in the workload sandbox (:mod:`llmos.controllers.isolation`),
which shows them their model's files and their volumes only: a model's code
(``--trust-remote-code``) cannot read the server's data. vLLM runs outside it.
The ``Isolated`` condition says which.

Volumes: ``spec.volumes`` are mounted as for Notebooks
(:func:`~llmos.controllers.volume.mounts`): each replica runs in the first one
and gets each as ``LLMOS_VOLUME_<NAME>``. A volume that is missing, not ready
or being deleted stops the replicas and fails the ModelService with a message
naming it; it is tried again every 30 s, and at once when that volume changes.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Hashable
from typing import Any

from llmos._lib.errors import LLMOSError, Reason
from llmos._lib.quantity import format_bytes
from llmos.controllers.downloads import Downloads
from llmos.controllers.errors import PermanentError
from llmos.controllers.events import EventRecorder
from llmos.controllers.external_endpoint import external_status
from llmos.controllers.gpualloc import GPUAllocator
from llmos.controllers.gpudevices import GPUDEVICES
from llmos.controllers.gpuplacement import Member, ReplicaPlacer, owners_on, reservation
from llmos.controllers.hftoken import SECRETS, hf_token, users_of_secret
from llmos.controllers.isolation import Isolation, Unisolated
from llmos.controllers.loop import ObjectKey, Related
from llmos.controllers.model_replica import (
    model_ref,
    placed_context,
    replica_prefix,
    replica_spec,
    shown_folders,
)
from llmos.controllers.nodealloc import NodeAllocator
from llmos.controllers.replica_events import ReplicaEvents
from llmos.controllers.volume import (
    VOLUMES,
    Storage,
    mounts,
    waiting_for_it,
)
from llmos.engines import modelscope
from llmos.engines.base import Engine, EngineContext, EngineError, ModelFiles
from llmos.engines.keys import EngineKeys
from llmos.engines.registry import choose
from llmos.engines.sources import HUGGINGFACE, ModelRef, resolve_now
from llmos.gpu.errors import GPUError
from llmos.gpu.estimate import estimate_memory
from llmos.gpu.request import gpu_request, placement
from llmos.resources.meta import set_condition
from llmos.runtime.base import Phase, ReplicaStatus, Runtime
from llmos.store.base import ResourceStore, WatchEvent

MODELSERVICES = "modelservices.ml.llmos.ai"
FINALIZER = "llmos.ai/modelservice-replicas"
SCHEDULING_RETRY_SECONDS = 10.0


def served_name(ms: dict[str, Any]) -> str:
    return str(ms["spec"].get("servedModelName") or ms["metadata"]["name"])


class ModelServiceReconciler:
    resource = MODELSERVICES

    def __init__(
        self,
        store: ResourceStore,
        runtime: Runtime,
        storage: Storage,
        events: EventRecorder,
        downloads: Downloads,
        *,
        setting: Any = None,
        gpus: GPUAllocator | None = None,
        node: NodeAllocator | None = None,
        keys: EngineKeys | None = None,
        isolation: Isolation | None = None,
    ) -> None:
        self.store = store
        self.keys = keys
        self.isolation = isolation
        self.runtime = runtime
        self.storage = storage
        self.events = events
        self.downloads = downloads
        self.placer = ReplicaPlacer(gpus, events, node)
        self.setting = setting or (lambda name: "")
        self.replica_events = ReplicaEvents(events)
        self.related: dict[str, Related] = {
            SECRETS: self._users_of_secret,
            GPUDEVICES: owners_on("ModelService"),
            VOLUMES: waiting_for_it(store, MODELSERVICES),
        }

    async def _users_of_secret(self, event: WatchEvent) -> list[ObjectKey]:
        return await users_of_secret(self.store, event)

    async def reconcile(self, key: ObjectKey) -> float | None:
        owner = (MODELSERVICES, key)  # of its download
        try:
            ms = await self.store.get(MODELSERVICES, key.namespace, key.name)
        except LLMOSError as exc:
            if exc.reason == Reason.NOT_FOUND:
                self.downloads.release(owner)
                await self._delete_replicas(key)  # none run unless its finalizer was forced off
            raise
        meta = ms["metadata"]
        if meta.get("deletionTimestamp"):
            self.downloads.release(owner)
            await self._delete_replicas(key)
            if FINALIZER in meta.get("finalizers", []):
                meta["finalizers"] = [f for f in meta["finalizers"] if f != FINALIZER]
                await self.store.update(MODELSERVICES, ms)
            return None
        generation = ms["metadata"].get("generation")
        if ms["spec"].get("endpoint") or int(ms["spec"].get("replicas", 1)) == 0:
            # Nothing runs here (an external endpoint, or scaled to zero): stop what
            # ran before; the finalizer has nothing left to guard.
            self.downloads.release(owner)
            await self._remove_replicas(key, keep=0)
            if FINALIZER in meta.get("finalizers", []):
                meta["finalizers"] = [f for f in meta["finalizers"] if f != FINALIZER]
                ms = await self.store.update(MODELSERVICES, ms)
            status: dict[str, Any] = dict(ms.get("status") or {})
            if ms["spec"].get("endpoint"):
                return await self._external(ms, status, generation)
            self._summarize(status, [], 0, generation)
            await self._save(ms, status)
            return None
        if FINALIZER not in meta.get("finalizers", []):
            meta["finalizers"] = [*meta.get("finalizers", []), FINALIZER]
            ms = await self.store.update(MODELSERVICES, ms)
        status = dict(ms.get("status") or {})
        was_downloading = status.get("phase") == "Downloading"
        try:
            token = await hf_token(self.store, ms)
        except EngineError as exc:
            self.downloads.release(owner)
            return await self._fail(ms, status, "ModelAvailable", "TokenUnavailable", str(exc))
        try:
            files = self._model_files(ms, status, token, owner)
        except EngineError as exc:
            return await self._fail(ms, status, "ModelAvailable", "ModelUnavailable", str(exc))
        if files is None:
            if not was_downloading:
                await self.events.record(ms, "Downloading", self._download_message(ms))
            set_condition(status, "ModelAvailable", False, "Downloading", "downloading the model")
            status.update(phase="Downloading", message="downloading the model")
            await self._save(ms, status)
            return 1.0
        if was_downloading:
            await self.events.record(ms, "Downloaded", f"{ms['spec']['model']} is in {files.path}")
        set_condition(status, "ModelAvailable", True, "Found", str(files.path))
        status.pop("downloadProgress", None)
        try:
            request = gpu_request(ms["spec"].get("resources"))
            policy = placement(ms["spec"].get("resources"))
        except GPUError as exc:
            return await self._fail(ms, status, "Scheduled", "InvalidResources", str(exc))
        estimate = await asyncio.to_thread(
            estimate_memory, files.path, files.format, files.size_bytes
        )
        status["gpuMemoryEstimate"] = format_bytes(-(-estimate.total_bytes // 2**20) * 2**20)
        try:
            # auto picks vLLM only for a replica that gets GPUs: one without sees none.
            engine = choose(ms["spec"].get("engine", "auto"), files, request is not None)
            # Checked as it will run: on the GPUs asked for (each replica gets its own).
            asked = tuple(range(request.count)) if request else ()
            args = tuple(ms["spec"].get("engineArgs") or ())
            api_key = self.keys.for_service(ms) if self.keys else None
            ctx = EngineContext(files, served_name(ms), args, gpus=asked, api_key=api_key)
            engine.check(ctx)
        except EngineError as exc:
            return await self._fail(ms, status, "EngineAvailable", "EngineUnavailable", str(exc))
        set_condition(status, "EngineAvailable", True, engine.name, f"served by {engine.name}")
        try:
            self._isolated(engine, status, generation)
        except Unisolated as exc:
            await self._remove_replicas(key, keep=0)
            return await self._fail(ms, status, "Isolated", "NoSandbox", str(exc))
        try:
            shown = shown_folders(
                self.isolation,
                self.storage.root,
                self.downloads.cache_dir,
                key.namespace,
                engine,
                files,
            )
        except EngineError as exc:
            await self._remove_replicas(key, keep=0)
            return await self._fail(ms, status, "ModelAvailable", "ModelUnavailable", str(exc))
        try:
            mounted = await mounts(
                self.store, self.storage, key.namespace, ms["spec"].get("volumes") or []
            )
        except PermanentError as exc:
            await self._remove_replicas(key, keep=0)
            return await self._fail(ms, status, "Ready", "VolumeUnavailable", str(exc))
        wanted = int(ms["spec"].get("replicas", 1))
        reserves = reservation(ms["spec"].get("resources"))
        members = [Member(i, f"replica {i}", request, policy, reserves) for i in range(wanted)]
        scheduling = await self.placer.place(ms, status, members)
        shortfall = scheduling.shortfall
        statuses = [
            await self.runtime.ensure(
                replica_spec(
                    ms,
                    engine,
                    placed_context(ctx, placed, estimate),
                    index,
                    mounted,
                    isolation=self.isolation,
                    token=token,
                    shown=shown,
                    placed=placed,
                )
            )
            for index, placed in enumerate(scheduling.placed)
        ]
        await self._remove_replicas(key, keep=len(scheduling.placed))
        for index, st in enumerate(statuses):
            await self.replica_events.observe(ms, f"replica {index}", st)
        self._summarize(status, statuses, wanted, generation)
        status["engine"] = engine.name
        if shortfall:
            status.update(phase="Pending", message=shortfall)
            set_condition(status, "Ready", False, scheduling.reason, shortfall, generation)
        await self._save(ms, status)
        return SCHEDULING_RETRY_SECONDS if shortfall else None

    async def _external(
        self, ms: dict[str, Any], status: dict[str, Any], generation: int | None
    ) -> float | None:
        """An endpoint that runs elsewhere: no replicas here; ready while it answers."""
        await external_status(ms, status, generation)
        await self._save(ms, status)
        return 30.0

    def _download_message(self, ms: dict[str, Any]) -> str:
        source = self._endpoint(model_ref(ms)) or HUGGINGFACE
        return f"downloading {ms['spec']['model']} from {source}"

    def _endpoint(self, ref: ModelRef) -> str | None:
        """The hub ``ref`` downloads from: its Setting, or None for Hugging Face's own."""
        if ref.source == "modelscope":
            return self.setting("modelscope-endpoint") or modelscope.DEFAULT_ENDPOINT
        return self.setting("huggingface-endpoint") or None

    def _model_files(
        self, ms: dict[str, Any], status: dict[str, Any], token: str | None, owner: Hashable
    ) -> ModelFiles | None:
        """The model's files, or None while they download (for ``owner``, the ModelService)."""
        ref = model_ref(ms)
        if ref.source not in ("huggingface", "modelscope"):
            self.downloads.release(owner)  # nothing to download now
        files = resolve_now(ref)
        if files is not None:
            return files
        endpoint = self._endpoint(ref)
        state = self.downloads.state(ref, owner=owner, endpoint=endpoint, token=token)
        if state.files is not None:
            return state.files
        if state.error:
            self.downloads.forget_failure(ref, endpoint=endpoint, token=token)
            raise EngineError(state.error)
        status["downloadProgress"] = state.progress()
        return None

    def _isolated(self, engine: Engine, status: dict[str, Any], generation: int | None) -> None:
        """The ``Isolated`` condition (embedded mode): whether replicas run in the sandbox."""
        if self.isolation is None:
            return
        if engine.sandboxed:
            self.isolation.check(status, generation)
            return
        message = f"the {engine.name} engine runs outside the sandbox, as the server's user"
        set_condition(status, "Isolated", False, "NotSandboxed", message, generation)

    async def _delete_replicas(self, key: ObjectKey) -> None:
        """The ModelService is deleted: stop its replicas and delete their logs, so one
        made again with its name starts with none (scaled-away replicas' logs too)."""
        await self._remove_replicas(key, keep=0)
        self.runtime.forget_logs(replica_prefix(key.namespace, key.name))

    async def _remove_replicas(self, key: ObjectKey, keep: int) -> None:
        """Stop the replicas from index ``keep`` up; their logs stay for a scale back up."""
        prefix = replica_prefix(key.namespace, key.name)
        for replica in self.runtime.keys(prefix):
            if int(replica.rsplit("/", 1)[1]) >= keep:
                await self.runtime.remove(replica)
                self.replica_events.forget(replica)
        await self.placer.release(("ModelService", key.namespace, key.name), keep)

    def _summarize(
        self,
        status: dict[str, Any],
        statuses: list[ReplicaStatus],
        wanted: int,
        generation: int | None,
    ) -> None:
        ready = [s for s in statuses if s.ready]
        status["replicas"] = wanted
        status["readyReplicas"] = len(ready)
        status["endpoints"] = [f"http://127.0.0.1:{s.port}" for s in ready if s.port]
        status["observedGeneration"] = generation
        crashing = [s for s in statuses if s.phase == Phase.CRASHLOOP]
        if wanted == 0:
            phase, message = "Stopped", "scaled to 0 replicas"
        elif len(ready) == wanted:
            phase, message = "Ready", f"{wanted}/{wanted} replicas ready"
        elif crashing:
            lines = "\n".join(crashing[0].last_lines[-10:])
            phase, message = "CrashLoop", f"{crashing[0].message}\n{lines}".strip()
        else:
            phase, message = "Deploying", f"{len(ready)}/{wanted} replicas ready"
        status["phase"], status["message"] = phase, message
        set_condition(status, "CrashLoop", bool(crashing), "BackOff" if crashing else "", "")
        set_condition(status, "Ready", len(ready) == wanted, phase, message, generation)

    async def _fail(
        self, ms: dict[str, Any], status: dict[str, Any], condition: str, reason: str, message: str
    ) -> float | None:
        set_condition(status, condition, False, reason, message)
        set_condition(status, "Ready", False, reason, message, ms["metadata"].get("generation"))
        status.update(phase="Failed", message=message, readyReplicas=0, endpoints=[])
        await self.events.record(ms, reason, message, "Warning")
        await self._save(ms, status)
        return 30.0

    async def _save(self, ms: dict[str, Any], status: dict[str, Any]) -> None:
        if status != (ms.get("status") or {}):
            # If it changed meanwhile, the next reconcile writes it.
            with contextlib.suppress(LLMOSError):
                await self.store.update_status(MODELSERVICES, {**ms, "status": status})
