"""How the workload proxy reaches a notebook: where it listens, its secret, waking it when idle.

Embedded mode (:func:`notebook_route`): a local process on a loopback port, started
again on demand when it was culled. Cluster mode (:func:`cluster_notebook_route`):
the notebook's ready pod (read from the pods, not from its status, which users
may write) with the token from its Secret. Either way the proxy presents the
notebook's secret as the notebook's server expects it.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

from llmos._lib.errors import LLMOSError, Reason
from llmos.api.workload_proxy import Route, Upstream
from llmos.api.workload_tokens import WorkloadTokens
from llmos.auth.rbac import Principal
from llmos.controllers.notebook import (
    CODE_SERVER_COOKIE,
    NOTEBOOKS,
    NotebookReconciler,
    base_path,
    replica_key,
)
from llmos.runtime.base import Runtime
from llmos.runtime.kube.render import NOTEBOOK_PORT
from llmos.runtime.kube.runtime import KubeRuntime
from llmos.store.base import ResourceStore

WAKE_SECONDS = 90.0


async def _running(store: ResourceStore, namespace: str, name: str) -> dict[str, Any]:
    """The notebook, unless it is stopped (409: nothing would answer)."""
    nb = await store.get(NOTEBOOKS, namespace, name)
    if nb["spec"].get("stopped"):
        raise LLMOSError(
            f"notebook {name!r} is stopped: set spec.stopped to false to start it",
            Reason.CONFLICT,
        )
    return nb


def notebook_route(store: ResourceStore, runtime: Runtime, notebooks: NotebookReconciler) -> Route:
    async def resolve(who: Principal, namespace: str, name: str, rest: str) -> Upstream:
        nb = await _running(store, namespace, name)
        key = replica_key(namespace, name)
        activity = notebooks.activity
        status = runtime.status(key)
        if status is None or not status.ready:
            activity.touch(namespace, name)  # an idle notebook starts again on demand
            activity.wake(namespace, name)
            deadline = time.monotonic() + WAKE_SECONDS
            while status is None or not status.ready:
                phase = (nb.get("status") or {}).get("phase")
                if phase in ("Unavailable", "Failed") or time.monotonic() > deadline:
                    message = (nb.get("status") or {}).get("message") or "it is not ready"
                    raise LLMOSError(
                        f"notebook {name!r} is not ready: {message}",
                        Reason.SERVICE_UNAVAILABLE,
                        retry_after=5,
                    )
                await asyncio.sleep(0.2)
                activity.touch(namespace, name)  # waiting is use: do not cull it meanwhile
                status = runtime.status(key)
                nb = await store.get(NOTEBOOKS, namespace, name)
        assert status.port is not None  # a ready notebook always has its port
        return _upstream(
            nb,
            f"http://127.0.0.1:{status.port}",
            notebooks.secret(nb["metadata"]["uid"]),
            rest,
            lambda: activity.touch(namespace, name),
        )

    return Route("ml.llmos.ai", "notebooks", resolve)


def cluster_notebook_route(store: ResourceStore, runtime: KubeRuntime) -> Route:
    """Notebooks run by the Kubernetes runtime: the ready pod, with its Secret's token."""
    tokens = WorkloadTokens(runtime)

    async def resolve(who: Principal, namespace: str, name: str, rest: str) -> Upstream:
        nb = await _running(store, namespace, name)
        status = nb.get("status") or {}
        # Where it listens comes from its pod, not from its (user-writable) status.
        endpoint = await runtime.address(nb, NOTEBOOK_PORT)
        if not endpoint:
            why = status.get("message") or "its pod is not ready yet"
            raise LLMOSError(
                f"notebook {name!r} is not ready ({status.get('phase') or 'Pending'}): {why}",
                Reason.SERVICE_UNAVAILABLE,
                retry_after=5,
            )
        secret = await tokens.get(nb)
        return _upstream(nb, str(endpoint).rstrip("/"), secret, rest, lambda: None)

    return Route("ml.llmos.ai", "notebooks", resolve)


def _upstream(
    nb: dict[str, Any], base: str, secret: str, rest: str, on_activity: Callable[[], None]
) -> Upstream:
    """The request to ``base`` for path ``rest``, carrying the secret as the notebook takes it."""
    meta = nb["metadata"]
    kind = nb["spec"].get("type", "jupyter")
    cookies: dict[str, str] = {}
    if kind == "jupyter":
        # Jupyter serves under its base URL; the proxy adds its token.
        path = base_path(meta["namespace"], meta["name"]) + rest.lstrip("/")
        headers = [("Authorization", f"token {secret}")]
    elif kind == "vscode":
        # code-server serves at / with relative links only; its session cookie is the secret.
        path, headers, cookies = rest, [], {CODE_SERVER_COOKIE: secret}
    else:
        path, headers = rest, []
    return Upstream(base=base, path=path, headers=headers, cookies=cookies, on_activity=on_activity)
