"""How the workload proxy reaches a notebook: where it listens, its secret, waking it when idle.

Embedded mode (:func:`notebook_route`): a local process on a loopback port.
Cluster mode (:func:`cluster_notebook_route`): the notebook's ready pod (read
from the pods, not from its status, which users may write) with the token from
its Secret. Either way the proxy presents the notebook's secret as the
notebook's server expects it, records the traffic for idle culling
(:mod:`llmos.api.notebook_activity`), and starts a notebook that is not ready
(one culled when idle) on demand, waiting until it is.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable
from typing import Any

from llmos._lib.errors import LLMOSError, Reason
from llmos.api.notebook_activity import ProxyActivity
from llmos.api.workload_proxy import Route, Upstream
from llmos.api.workload_tokens import WorkloadTokens
from llmos.auth.rbac import Principal
from llmos.controllers.notebook import NOTEBOOKS, NotebookReconciler, replica_key
from llmos.controllers.notebook_idle import JupyterReach, base_path
from llmos.controllers.notebook_launch import CODE_SERVER_COOKIE
from llmos.runtime.base import Runtime
from llmos.runtime.kube.render import NOTEBOOK_PORT
from llmos.runtime.kube.runtime import KubeRuntime
from llmos.store.base import ResourceStore

WAKE_SECONDS = 90.0
# Phases that waiting does not end: the proxy answers 503 with the reason at once.
STUCK = ("Unavailable", "Failed", "CrashLoop", "Pending")


async def _running(store: ResourceStore, namespace: str, name: str) -> dict[str, Any]:
    """The notebook, unless it is stopped (409: nothing would answer)."""
    nb = await store.get(NOTEBOOKS, namespace, name)
    if nb["spec"].get("stopped"):
        raise LLMOSError(
            f"notebook {name!r} is stopped: set spec.stopped to false to start it",
            Reason.CONFLICT,
        )
    return nb


async def _woken(
    store: ResourceStore,
    activity: ProxyActivity,
    nb: dict[str, Any],
    origin: Callable[[], Awaitable[str | None]],
) -> str:
    """Where the notebook answers once it is up (``origin``): started if culled, waited for."""
    meta = nb["metadata"]
    namespace, name = meta["namespace"], meta["name"]
    deadline = time.monotonic() + WAKE_SECONDS
    woken = False
    while True:
        status = nb.get("status") or {}
        phase = status.get("phase")
        if phase in STUCK or time.monotonic() > deadline:
            why = status.get("message") or "it is not ready yet"
            raise LLMOSError(
                f"notebook {name!r} is not ready ({phase or 'Pending'}): {why}",
                Reason.SERVICE_UNAVAILABLE,
                retry_after=5,
            )
        if woken:
            activity.touch(nb)  # waiting is use: do not cull it meanwhile
        else:
            await activity.wake(nb)
            woken = True
        await asyncio.sleep(0.2)
        found = await origin()
        if found is not None:
            return found
        nb = await _running(store, namespace, name)


def notebook_route(store: ResourceStore, runtime: Runtime, notebooks: NotebookReconciler) -> Route:
    activity = ProxyActivity(store, notebooks.activity)

    async def resolve(who: Principal, namespace: str, name: str, rest: str) -> Upstream:
        nb = await _running(store, namespace, name)
        key = replica_key(namespace, name)

        async def process() -> str | None:
            status = runtime.status(key)
            if status is None or not status.ready or not status.port:
                return None
            return f"http://127.0.0.1:{status.port}"

        base = await process() or await _woken(store, activity, nb, process)
        return _upstream(
            nb,
            base,
            notebooks.secret(nb["metadata"]["uid"]),
            rest,
            lambda: activity.touch(nb),
        )

    return Route("ml.llmos.ai", "notebooks", resolve)


def cluster_notebook_route(
    store: ResourceStore, runtime: KubeRuntime, activity: ProxyActivity, tokens: WorkloadTokens
) -> Route:
    """Notebooks run by the Kubernetes runtime: the ready pod, with its Secret's token."""

    async def resolve(who: Principal, namespace: str, name: str, rest: str) -> Upstream:
        nb = await _running(store, namespace, name)

        async def pod() -> str | None:
            # Where it listens comes from its pod, not from its (user-writable) status.
            return await runtime.address(nb, NOTEBOOK_PORT)

        endpoint = await pod() or await _woken(store, activity, nb, pod)
        secret = await tokens.get(nb)
        return _upstream(nb, endpoint.rstrip("/"), secret, rest, lambda: activity.touch(nb))

    return Route("ml.llmos.ai", "notebooks", resolve, close=activity.close)


def jupyter_in_pod(runtime: KubeRuntime, tokens: WorkloadTokens) -> JupyterReach:
    """Where a cluster-mode notebook's ready pod answers, with its token: for idle checks."""

    async def reach(nb: dict[str, Any]) -> tuple[str, str] | None:
        origin = await runtime.address(nb, NOTEBOOK_PORT)
        if origin is None:
            return None
        with contextlib.suppress(LLMOSError):
            return origin, await tokens.get(nb)
        return None

    return reach


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
