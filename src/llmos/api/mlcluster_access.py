"""How the workload proxy reaches an MLCluster's Ray dashboard (and so its Jobs API).

``/mlclusters/{ns}/{name}/dashboard/...`` goes to the head's dashboard on
127.0.0.1 with the prefix stripped (the dashboard serves at ``/``) and the
cluster's Ray token added, so ``ray job submit --address
https://HOST:8443/mlclusters/{ns}/{name}/dashboard`` works with an LLMOS token
in ``--headers``.
"""

from __future__ import annotations

from llmos._lib.errors import LLMOSError, Reason
from llmos.api.workload_proxy import Route, Upstream
from llmos.auth.rbac import Principal
from llmos.controllers.mlcluster import MLCLUSTERS, MLClusterReconciler, head_key
from llmos.runtime.base import Runtime
from llmos.store.base import ResourceStore

PREFIX = "/dashboard"


def mlcluster_route(store: ResourceStore, runtime: Runtime, clusters: MLClusterReconciler) -> Route:
    async def resolve(who: Principal, namespace: str, name: str, rest: str) -> Upstream:
        cluster = await store.get(MLCLUSTERS, namespace, name)
        if rest != PREFIX and not rest.startswith(PREFIX + "/"):
            raise LLMOSError(
                f"use /mlclusters/{namespace}/{name}/dashboard/ to reach the Ray dashboard",
                Reason.NOT_FOUND,
            )
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
            path=rest.removeprefix(PREFIX) or "/",
            headers=[("Authorization", f"Bearer {token}")],
        )

    return Route("ml.llmos.ai", "mlclusters", resolve)
