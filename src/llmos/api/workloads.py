"""The controllers of workloads, for the runtime the server uses.

Embedded mode (the local runtime): one reconciler per kind runs supervised
processes, and the workload proxy reaches notebooks and Ray dashboards on
loopback. Cluster mode (``--runtime kube``): :class:`ClusterReconciler` hands
each ModelService, Notebook, MLCluster and Volume to the Kubernetes runtime,
and the workload proxy reaches notebooks at their pods' addresses.
Either way the result maps an owner kind to its controller, so a runtime's
change notices can wake the right one.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass

import httpx
import orjson

from llmos._lib.errors import LLMOSError, Reason
from llmos.api.config import ServerConfig
from llmos.api.mlcluster_access import cluster_mlcluster_route, mlcluster_route
from llmos.api.notebook_access import cluster_notebook_route, jupyter_in_pod, notebook_route
from llmos.api.notebook_activity import ProxyActivity
from llmos.api.workload_proxy import WorkloadProxy
from llmos.api.workload_tokens import WorkloadTokens
from llmos.auth.service import AuthService
from llmos.controllers.cluster import RESOURCES, ClusterReconciler, SnapshotsUnsupported
from llmos.controllers.downloads import Downloads
from llmos.controllers.events import EventRecorder
from llmos.controllers.gpualloc import GPUAllocator
from llmos.controllers.isolation import Isolation, SandboxMode
from llmos.controllers.loop import Controller, Manager, ObjectKey
from llmos.controllers.mlcluster import MLClusterReconciler
from llmos.controllers.modelservice import ModelServiceReconciler
from llmos.controllers.nodealloc import NodeAllocator
from llmos.controllers.notebook import NotebookReconciler
from llmos.controllers.notebook_idle import Activity
from llmos.controllers.orphan_logs import forget_orphan_logs
from llmos.controllers.restarted import mark_restarting
from llmos.controllers.volume import SnapshotReconciler, Storage, VolumeReconciler
from llmos.engines.keys import EngineKeys
from llmos.runtime.base import ReplicaSpec, ReplicaStatus
from llmos.runtime.kube.render import KubeSettings
from llmos.runtime.kube.runtime import KubeRuntime
from llmos.runtime.local import LocalRuntime
from llmos.runtime.local.sandbox import Sandbox
from llmos.store.base import ResourceStore
from llmos.store.kube.client import SERVICE_ACCOUNT, KubeClient, unreachable
from llmos.store.kube.store import KubeStore
from llmos.store.kube.watch import open_stream


@dataclass
class Workloads:
    owners: dict[str, Controller]  # by LLMOS kind
    proxy: WorkloadProxy | None  # notebooks' and Ray dashboards' proxy, where there is one

    def wake(self, kind: str, namespace: str, name: str) -> None:
        if kind in self.owners:
            self.owners[kind].queue.add(ObjectKey(namespace, name))


_LOG_REASONS = {404: Reason.NOT_FOUND, 400: Reason.BAD_REQUEST}


class _RuntimeAPI:
    """The kube store's client, as the Kubernetes runtime's :class:`KubeAPI`."""

    def __init__(self, client: KubeClient) -> None:
        self.client = client
        self.request = client.request

    async def lines(self, path: str, params: dict[str, str]) -> AsyncIterator[str]:
        request = self.client.http.build_request(
            "GET", path, params=params, timeout=httpx.Timeout(30.0, read=None)
        )
        try:
            response = await self.client.http.send(request, stream=True)
        except httpx.HTTPError as exc:
            raise unreachable(self.client.connection.url, exc) from exc
        if response.status_code == 204:  # a pod no node runs yet: not an empty log, none
            await response.aclose()
            raise LLMOSError(
                "no node runs it yet (it is Pending), so Kubernetes has no log of it",
                Reason.BAD_REQUEST,
            )
        if not response.is_success:
            try:
                body = await response.aread()
            finally:
                await response.aclose()
            try:
                message = str(orjson.loads(body).get("message") or "")
            except (orjson.JSONDecodeError, AttributeError):
                message = body.decode(errors="replace")[:300]
            code = response.status_code
            reason = _LOG_REASONS.get(code, Reason.SERVICE_UNAVAILABLE)
            raise LLMOSError(message or f"HTTP {code}", reason)

        async def lines() -> AsyncIterator[str]:
            try:
                async for line in response.aiter_lines():
                    yield line
            finally:
                await response.aclose()

        return lines()

    async def watch(
        self, path: str, params: dict[str, str], since: int
    ) -> AsyncIterator[tuple[str, dict[str, str], int]]:
        stream = await open_stream(
            self.client,
            path,
            path,
            {**params, "resourceVersion": str(since)},
            since=since,
            namespaces=None,
            bookmark_interval=None,
        )
        return ((event.namespace, event.labels, event.rv) async for event in stream)


def cluster_runtime(
    config: ServerConfig, store: ResourceStore, setting: Callable[[str], str]
) -> KubeRuntime | None:
    """The Kubernetes runtime when the server runs one (``--runtime``), else None."""
    wanted = config.runtime or ("kube" if config.store == "kube" else "local")
    if wanted == "local":
        return None
    if not isinstance(store, KubeStore):
        raise LLMOSError(
            "--runtime kube runs workloads in the cluster that keeps the objects: use it "
            "with --store kube",
            Reason.BAD_REQUEST,
        )
    namespace = _own_namespace()
    return KubeRuntime(
        _RuntimeAPI(store.client), lambda: KubeSettings.from_settings(setting, namespace)
    )


def _own_namespace() -> str:
    """The namespace of this server's pod, or the installer's default outside a pod."""
    try:
        return (SERVICE_ACCOUNT / "namespace").read_text().strip() or "llmos-system"
    except OSError:
        return "llmos-system"


async def local_workloads(
    manager: Manager,
    store: ResourceStore,
    runtime: LocalRuntime,
    events: EventRecorder,
    *,
    auth: AuthService,
    downloads: Downloads,
    gpus: GPUAllocator,
    node: NodeAllocator,
    storage: Storage,
    keys: EngineKeys | None = None,
    sandbox: SandboxMode = "auto",
    sole: bool = True,
) -> Workloads:
    """``sole``: this server alone runs the store's workloads (SQLite), so what the store
    shows as running was its previous run's; with a shared (kube) store another replica,
    the leader, may be running them now."""
    await forget_orphan_logs(store, runtime)  # of workloads deleted while none watched
    if sole:
        await mark_restarting(store)  # what the previous server ran is not running yet
    isolation = Isolation(Sandbox(storage.root), sandbox)
    await asyncio.to_thread(isolation.announce)  # tries bubblewrap once, off the loop
    serving = manager.add(
        Controller(
            store,
            ModelServiceReconciler(
                store,
                runtime,
                storage,
                events,
                downloads,
                setting=auth.setting,
                gpus=gpus,
                node=node,
                keys=keys,
                isolation=isolation,
            ),
        )
    )
    manager.add(Controller(store, VolumeReconciler(store, storage, events)))
    manager.add(Controller(store, SnapshotReconciler(store, storage, events)))
    notebook_reconciler = NotebookReconciler(
        store, runtime, storage, events, gpus=gpus, node=node, isolation=isolation
    )
    notebooks = manager.add(Controller(store, notebook_reconciler))
    notebook_reconciler.activity.wake = lambda ns, n: notebooks.queue.add(ObjectKey(ns, n))
    ray_reconciler = MLClusterReconciler(
        store, runtime, storage, events, gpus=gpus, node=node, isolation=isolation
    )
    await ray_reconciler.sweep_temp()
    ray_clusters = manager.add(Controller(store, ray_reconciler))
    ray_reconciler.wake = lambda ns, n: ray_clusters.queue.add(ObjectKey(ns, n))
    proxy = WorkloadProxy(
        auth,
        {
            "notebooks": notebook_route(store, runtime, notebook_reconciler),
            "mlclusters": mlcluster_route(store, runtime, ray_reconciler),
        },
    )
    workloads = Workloads(
        {"ModelService": serving, "Notebook": notebooks, "MLCluster": ray_clusters}, proxy
    )

    def replica_changed(status: ReplicaStatus, spec: ReplicaSpec) -> None:
        workloads.wake(*spec.owner)

    runtime.on_status(replica_changed)
    return workloads


async def cluster_workloads(
    manager: Manager,
    store: ResourceStore,
    runtime: KubeRuntime,
    events: EventRecorder,
    *,
    auth: AuthService,
) -> Workloads:
    # Notebooks' traffic through the proxy (and Jupyter's own) for idle culling.
    activity, tokens = Activity(), WorkloadTokens(runtime)
    jupyter = jupyter_in_pod(runtime, tokens)
    owners = {
        kind: manager.add(
            Controller(
                store,
                ClusterReconciler(kind, store, runtime, events, activity=activity, jupyter=jupyter),
            )
        )
        for kind in RESOURCES
    }
    activity.wake = lambda ns, n: owners["Notebook"].queue.add(ObjectKey(ns, n))
    manager.add(Controller(store, SnapshotsUnsupported(store, events)))
    # Notebooks' pods and Ray heads' dashboards through :8443.
    notebooks = ProxyActivity(store, activity, shared=True)
    proxy = WorkloadProxy(
        auth,
        {
            "notebooks": cluster_notebook_route(store, runtime, notebooks, tokens),
            "mlclusters": cluster_mlcluster_route(store, runtime),
        },
    )
    workloads = Workloads(owners, proxy)
    runtime.on_change(workloads.wake)
    await runtime.start()
    return workloads
