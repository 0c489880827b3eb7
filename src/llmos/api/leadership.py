"""Who runs the controllers: this server alone, or the replica holding the leader Lease.

On SQLite there is one server, and it runs the controllers. On the kube store
several replicas serve the API, and only the holder of the Lease
``llmos-system/llmos-controllers`` reconciles (``controllers.leader``). A
replica that loses the Lease stops its controllers and asks the server to exit
(``lost``), so that Kubernetes restarts it as a follower.
``api.server`` calls :meth:`ControllerRun.start` where it used to start the
manager.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import Callable

from llmos.controllers.leader import LeaderElector
from llmos.controllers.loop import Manager
from llmos.store.base import ResourceStore
from llmos.store.kube.store import KubeStore


class ControllerRun:
    def __init__(self, store: ResourceStore, manager: Manager, node_name: str) -> None:
        self.manager = manager
        self.elector: LeaderElector | None = None
        if isinstance(store, KubeStore):
            self.elector = LeaderElector(
                store.leader_lock(),
                f"{node_name}/{os.getpid()}",
                on_started=manager.start,
                on_stopped=manager.stop,
            )
        self._watch: asyncio.Task[None] | None = None

    @property
    def lost(self) -> bool:
        return self.elector is not None and self.elector.lost.is_set()

    async def start(self, on_lost: Callable[[], None]) -> None:
        """Start the controllers now, or campaign for the Lease; ``on_lost`` if it goes."""
        if self.elector is None:
            await self.manager.start()
            return
        await self.elector.start()
        lost = self.elector.lost

        async def watch() -> None:
            await lost.wait()
            on_lost()

        self._watch = asyncio.create_task(watch(), name="leader-lost")

    async def stop(self) -> None:
        if self._watch is not None:
            self._watch.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._watch
        if self.elector is not None:
            await self.elector.stop()  # stops the controllers if leading, releases the Lease
