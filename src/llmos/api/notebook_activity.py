"""The workload proxy's record of traffic to notebooks, which idle culling reads.

Every request and WebSocket message through the proxy touches the notebook's
:class:`~llmos.controllers.notebook_idle.Activity`, which the notebook
reconciler on this server reads. In cluster mode several server replicas serve
the proxy while only the leader runs the controllers, so traffic also goes into
the notebook's ``status.lastActivityTime`` (at most every
:func:`~llmos.controllers.notebook_idle.record_every` seconds per notebook), and
waking a culled notebook writes it at once: the leader reconciles on that
change (``ClusterReconciler.woken_by``). Used by :mod:`llmos.api.notebook_access`.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

from llmos._lib.errors import LLMOSError, Reason
from llmos._lib.tasks import cancel_all
from llmos.controllers.notebook import NOTEBOOKS
from llmos.controllers.notebook_idle import Activity, fold, idle_timeout, record_every
from llmos.store.base import ResourceStore

log = logging.getLogger(__name__)

_ATTEMPTS = 3  # a write that conflicts with the controller's is tried again
_WAKE_WRITE_SECONDS = 1.0


class ProxyActivity:
    """Notebook traffic into ``activity``, and with ``shared`` into the status too."""

    def __init__(self, store: ResourceStore, activity: Activity, *, shared: bool = False) -> None:
        self.store = store
        self.activity = activity
        self.shared = shared
        self._written: dict[tuple[str, str], float] = {}
        self._writes: set[asyncio.Task[None]] = set()

    def touch(self, nb: dict[str, Any]) -> None:
        """The notebook is in use now."""
        meta = nb["metadata"]
        namespace, name = meta["namespace"], meta["name"]
        self.activity.touch(namespace, name)
        timeout = idle_timeout(nb)
        if not self.shared or timeout is None:
            return
        now = time.time()
        if now - self._written.get((namespace, name), 0.0) < record_every(timeout):
            return
        self._written[(namespace, name)] = now
        task = asyncio.create_task(self._write(namespace, name), name=f"activity-{name}")
        self._writes.add(task)
        task.add_done_callback(self._writes.discard)

    async def wake(self, nb: dict[str, Any]) -> None:
        """Start the notebook if it was culled, wherever its controller runs."""
        meta = nb["metadata"]
        namespace, name = meta["namespace"], meta["name"]
        self.activity.touch(namespace, name)
        self.activity.wake(namespace, name)
        now = time.time()
        if not self.shared or idle_timeout(nb) is None:
            return
        # A page's many requests to a culled notebook write once between them.
        if now - self._written.get((namespace, name), 0.0) >= _WAKE_WRITE_SECONDS:
            self._written[(namespace, name)] = now
            await self._write(namespace, name)

    async def _write(self, namespace: str, name: str) -> None:
        """``status.lastActivityTime`` up to this server's latest traffic."""
        moment = self.activity.last(namespace, name)
        for _ in range(_ATTEMPTS):
            try:
                nb = await self.store.get(NOTEBOOKS, namespace, name)
                status = dict(nb.get("status") or {})
                if not fold(status, moment):
                    return
                await self.store.update_status(NOTEBOOKS, {**nb, "status": status})
                return
            except LLMOSError as exc:
                if exc.reason == Reason.CONFLICT:
                    continue
                if exc.reason != Reason.NOT_FOUND:
                    log.info(
                        "could not record the activity of notebook %s/%s: %s", namespace, name, exc
                    )
                return

    async def close(self) -> None:
        await cancel_all(self._writes)
