"""How the workload proxy reaches a notebook: its port, its secret, and waking it when idle."""

from __future__ import annotations

import asyncio
import time

from llmos._lib.errors import LLMOSError, Reason
from llmos.api.workload_proxy import Route, Upstream
from llmos.auth.rbac import Principal
from llmos.controllers.notebook import (
    CODE_SERVER_COOKIE,
    NOTEBOOKS,
    NotebookReconciler,
    base_path,
    replica_key,
)
from llmos.runtime.base import Runtime
from llmos.store.base import ResourceStore

WAKE_SECONDS = 90.0


def notebook_route(store: ResourceStore, runtime: Runtime, notebooks: NotebookReconciler) -> Route:
    async def resolve(who: Principal, namespace: str, name: str, rest: str) -> Upstream:
        nb = await store.get(NOTEBOOKS, namespace, name)
        if nb["spec"].get("stopped"):
            raise LLMOSError(
                f"notebook {name!r} is stopped: set spec.stopped to false to start it",
                Reason.CONFLICT,
            )
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
        secret = notebooks.secret(nb["metadata"]["uid"])
        kind = nb["spec"].get("type", "jupyter")
        cookies: dict[str, str] = {}
        if kind == "jupyter":
            # Jupyter serves under its base URL; the proxy adds its token.
            path = base_path(namespace, name) + rest.lstrip("/")
            headers = [("Authorization", f"token {secret}")]
        elif kind == "vscode":
            # code-server serves at / with relative links only; its session cookie is the secret.
            path, headers, cookies = rest, [], {CODE_SERVER_COOKIE: secret}
        else:
            path, headers = rest, []
        return Upstream(
            base=f"http://127.0.0.1:{status.port}",
            path=path,
            headers=headers,
            cookies=cookies,
            on_activity=lambda: activity.touch(namespace, name),
        )

    return Route("ml.llmos.ai", "notebooks", resolve)
