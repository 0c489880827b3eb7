"""The proxy's record of notebook traffic: in memory, and (cluster mode) in the status.

In cluster mode the replica that serves a request may not be the one running the
controllers, so traffic reaches ``status.lastActivityTime`` too, at most every
``record_every(timeout)`` seconds, and waking a culled notebook writes it at once.
"""

from __future__ import annotations

import asyncio
import copy
from typing import Any

from llmos._lib.errors import LLMOSError, Reason
from llmos.api.notebook_activity import ProxyActivity
from llmos.controllers.notebook_idle import Activity


class Store:
    """One notebook; ``conflicts`` status writes fail as if the controller wrote first."""

    def __init__(self, nb: dict[str, Any]) -> None:
        self.nb = nb
        self.written: list[str] = []
        self.conflicts = 0

    async def get(self, resource: str, namespace: str, name: str) -> dict[str, Any]:
        return copy.deepcopy(self.nb)

    async def update_status(self, resource: str, obj: dict[str, Any]) -> dict[str, Any]:
        if self.conflicts:
            self.conflicts -= 1
            raise LLMOSError("the object has been modified", Reason.CONFLICT)
        self.written.append(obj["status"]["lastActivityTime"])
        self.nb = obj
        return obj


def notebook(**spec: Any) -> dict[str, Any]:
    meta = {"namespace": "team", "name": "lab", "uid": "u1"}
    return {"kind": "Notebook", "metadata": meta, "spec": spec, "status": {"phase": "Ready"}}


async def until(check: Any) -> None:
    deadline = asyncio.get_running_loop().time() + 5
    while not check():
        assert asyncio.get_running_loop().time() < deadline, "timed out"
        await asyncio.sleep(0.01)


def test_traffic_reaches_the_status_at_most_every_record_every() -> None:
    async def main() -> None:
        nb = notebook(idleTimeoutMinutes=10)  # record_every: 30 s
        store = Store(nb)
        proxy = ProxyActivity(store, Activity(), shared=True)  # type: ignore[arg-type]
        proxy.touch(nb)
        await until(lambda: store.written)
        assert store.nb["status"]["phase"] == "Ready", "only lastActivityTime changes"
        proxy.touch(nb)
        assert not proxy._writes, "a second touch within 30 s stays in memory"
        assert proxy.activity.last("team", "lab") is not None
        await proxy.close()

    asyncio.run(main())


def test_waking_writes_at_once_through_a_conflict_and_wakes_the_local_controller() -> None:
    async def main() -> None:
        nb = notebook(idleTimeoutMinutes=10)
        store = Store(nb)
        store.conflicts = 1
        woken: list[tuple[str, str]] = []
        activity = Activity()
        activity.wake = lambda namespace, name: woken.append((namespace, name))
        proxy = ProxyActivity(store, activity, shared=True)  # type: ignore[arg-type]
        await proxy.wake(nb)
        assert len(store.written) == 1 and woken == [("team", "lab")]
        await proxy.wake(nb)  # the same page's next request: no second write
        assert len(store.written) == 1 and len(woken) == 2

    asyncio.run(main())


def test_embedded_mode_and_notebooks_never_culled_write_nothing() -> None:
    async def main() -> None:
        for nb, shared in ((notebook(idleTimeoutMinutes=10), False), (notebook(), True)):
            store = Store(nb)
            proxy = ProxyActivity(store, Activity(), shared=shared)  # type: ignore[arg-type]
            proxy.touch(nb)
            await proxy.wake(nb)
            assert not proxy._writes and store.written == []
            assert proxy.activity.last("team", "lab") is not None

    asyncio.run(main())
