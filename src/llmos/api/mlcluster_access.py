"""How the workload proxy reaches an MLCluster's Ray dashboard (and so its Jobs API).

``/mlclusters/{ns}/{name}/dashboard/...`` goes to the head's dashboard with the
prefix stripped (the dashboard serves at ``/``) and the cluster's Ray token
added, so ``ray job submit --address https://HOST:8443/mlclusters/{ns}/{name}/dashboard``
works with an LLMOS token in ``--headers``. Embedded mode (:func:`mlcluster_route`):
the head process's dashboard on 127.0.0.1. Cluster mode
(:func:`cluster_mlcluster_route`): the ready head pod of its KubeRay RayCluster
(``status.nodes``), port 8265, with the token from the cluster's Secret.
"""

from __future__ import annotations

from llmos._lib.errors import LLMOSError, Reason
from llmos.api.workload_proxy import Route, Upstream
from llmos.api.workload_tokens import WorkloadTokens
from llmos.auth.rbac import Principal
from llmos.controllers.mlcluster import MLCLUSTERS, MLClusterReconciler, head_key
from llmos.runtime.base import Runtime
from llmos.runtime.kube.runtime import KubeRuntime
from llmos.store.base import ResourceStore

PREFIX = "/dashboard"
DASHBOARD_PORT = 8265  # KubeRay's head: Ray's default dashboard port


def _dashboard_path(namespace: str, name: str, rest: str) -> str:
    if rest != PREFIX and not rest.startswith(PREFIX + "/"):
        raise LLMOSError(
            f"use /mlclusters/{namespace}/{name}/dashboard/ to reach the Ray dashboard",
            Reason.NOT_FOUND,
        )
    return rest.removeprefix(PREFIX) or "/"


def mlcluster_route(store: ResourceStore, runtime: Runtime, clusters: MLClusterReconciler) -> Route:
    async def resolve(who: Principal, namespace: str, name: str, rest: str) -> Upstream:
        cluster = await store.get(MLCLUSTERS, namespace, name)
        path = _dashboard_path(namespace, name, rest)
        key = head_key(namespace, name)
        status, slot = runtime.status(key), clusters.slots.get(key)
        if status is None or not status.ready or slot is None:
            message = (cluster.get("status") or {}).get("message") or "it is starting"
            raise LLMOSError(
                f"the Ray head of {name!r} is not ready: {message}",
                Reason.SERVICE_UNAVAILABLE,
                retry_after=5,
            )
        token = clusters.token(cluster["metadata"]["uid"])
        return Upstream(
            base=f"http://127.0.0.1:{slot.dashboard_port}",
            path=path,
            headers=[("Authorization", f"Bearer {token}")],
        )

    return Route("ml.llmos.ai", "mlclusters", resolve)


def cluster_mlcluster_route(store: ResourceStore, runtime: KubeRuntime) -> Route:
    """MLClusters run by KubeRay: the ready head pod's dashboard, with the cluster's token."""
    tokens = WorkloadTokens(runtime)

    async def resolve(who: Principal, namespace: str, name: str, rest: str) -> Upstream:
        cluster = await store.get(MLCLUSTERS, namespace, name)
        path = _dashboard_path(namespace, name, rest)
        status = cluster.get("status") or {}
        # The head's address comes from its pod, not from the (user-writable) status.
        base = await runtime.address(cluster, DASHBOARD_PORT, ray_head=True)
        if base is None:
            message = status.get("message") or "its head is starting"
            raise LLMOSError(
                f"the Ray head of {name!r} is not ready: {message}",
                Reason.SERVICE_UNAVAILABLE,
                retry_after=5,
            )
        token = await tokens.get(cluster)
        return Upstream(
            base=base,
            path=path,
            headers=[("Authorization", f"Bearer {token}")],
        )

    return Route("ml.llmos.ai", "mlclusters", resolve)
