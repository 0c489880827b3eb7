"""Idle culling of notebooks: when each was last used, and what culling one writes.

With ``spec.idleTimeoutMinutes`` (fractions allowed), a notebook that has seen no
traffic through the workload proxy, and for Jupyter no kernel activity, for that
long is stopped: phase ``Idle``, ``Ready`` False with reason ``Idle``, an Event
``Culled``; the next request through the proxy starts it again. Stopping it is
the caller's part: the embedded reconciler (:mod:`llmos.controllers.notebook`)
stops its process, cluster mode's (:mod:`llmos.controllers.cluster`) scales its
StatefulSet to 0. Both keep ``status.lastActivityTime`` with an
:class:`IdleClock`, from the :class:`Activity` the proxy
(:mod:`llmos.api.notebook_access`) touches on every request and WebSocket
message, and from Jupyter's own ``/api/status``.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

import aiohttp

from llmos._lib import timefmt
from llmos.controllers.events import EventRecorder
from llmos.resources.meta import set_condition

# Where a running notebook's Jupyter answers (``http://HOST:PORT``) and the token it
# wants, or None: what :meth:`IdleClock.ask_jupyter` needs in cluster mode.
JupyterReach = Callable[[dict[str, Any]], Awaitable[tuple[str, str] | None]]


def base_path(namespace: str, name: str) -> str:
    """Where users open a notebook, and the base URL Jupyter serves under."""
    return f"/notebooks/{namespace}/{name}/"


def idle_timeout(nb: dict[str, Any]) -> float | None:
    """``spec.idleTimeoutMinutes``, or None when the notebook is never culled."""
    timeout = nb["spec"].get("idleTimeoutMinutes")
    return float(timeout) if timeout else None


def check_every(timeout: float) -> float:
    """Seconds between idleness checks: twice per timeout, at least once a minute."""
    return min(60.0, max(1.0, timeout * 30))


def record_every(timeout: float) -> float:
    """Seconds between writes of proxy traffic into ``status.lastActivityTime``.

    A server replica that does not run the controllers can only tell the one that
    does through the status, so activity reaches it up to this late.
    """
    return check_every(timeout) / 2


def recorded_activity(status: dict[str, Any]) -> float | None:
    """``status.lastActivityTime`` in seconds since the epoch; None if absent or unreadable."""
    return timefmt.seconds_or_none(status.get("lastActivityTime"))


def fold(status: dict[str, Any], moment: float | None) -> bool:
    """Bring ``status.lastActivityTime`` up to ``moment``; whether it moved."""
    if moment is None:
        return False
    recorded = recorded_activity(status)
    if recorded is not None and recorded >= moment:
        return False
    status["lastActivityTime"] = timefmt.rfc3339(datetime.fromtimestamp(moment, UTC))
    return True


class Activity:
    """When each notebook last saw traffic through the proxy (seconds since the epoch)."""

    def __init__(self) -> None:
        self._last: dict[tuple[str, str], float] = {}
        # Reconciles the notebook soon: set by whoever runs its controller.
        self.wake: Callable[[str, str], None] = lambda namespace, name: None

    def touch(self, namespace: str, name: str) -> None:
        self.saw(namespace, name, time.time())

    def saw(self, namespace: str, name: str, moment: float) -> None:
        if moment > self._last.get((namespace, name), 0.0):
            self._last[(namespace, name)] = moment

    def last(self, namespace: str, name: str) -> float | None:
        return self._last.get((namespace, name))


class IdleClock:
    """A notebook's idle time from its status and this server's :class:`Activity`.

    ``shared``: proxy traffic seen by other server replicas reaches the status
    up to :func:`record_every` late, so a notebook is culled only that much later.
    """

    def __init__(self, activity: Activity, events: EventRecorder, *, shared: bool = False) -> None:
        self.activity = activity
        self.events = events
        self.shared = shared

    def idle_for(self, nb: dict[str, Any], status: dict[str, Any]) -> float | None:
        """Seconds since its last known use, or None if it was never used."""
        meta = nb["metadata"]
        moments = [self.activity.last(meta["namespace"], meta["name"]), recorded_activity(status)]
        known = [m for m in moments if m is not None]
        return time.time() - max(known) if known else None

    def overdue(self, nb: dict[str, Any], status: dict[str, Any]) -> bool:
        """Unused for longer than its idle timeout (never, without one)."""
        timeout = idle_timeout(nb)
        idle = self.idle_for(nb, status)
        if timeout is None or idle is None:
            return False
        return idle > timeout * 60 + (record_every(timeout) if self.shared else 0.0)

    @staticmethod
    def started(status: dict[str, Any]) -> None:
        """A start, or turning ready, is use: the idle clock runs from now."""
        status["lastActivityTime"] = timefmt.rfc3339()

    def ready(self, status: dict[str, Any], was_ready: bool) -> None:
        """A ready notebook's clock: from when it turned ready, or from now if it has none.

        One ready before this server started keeping a readable ``lastActivityTime``
        (an upgrade in cluster mode, where pods outlive the server, or a time a user
        overwrote) would otherwise never be culled.
        """
        if not was_ready or recorded_activity(status) is None:
            self.started(status)

    def fold(self, nb: dict[str, Any], status: dict[str, Any]) -> None:
        """Bring ``status.lastActivityTime`` up to the traffic this server saw."""
        meta = nb["metadata"]
        fold(status, self.activity.last(meta["namespace"], meta["name"]))

    async def cull(self, nb: dict[str, Any], status: dict[str, Any]) -> None:
        """Say in its status and an Event that the (just stopped) notebook was idle."""
        meta = nb["metadata"]
        url = base_path(meta["namespace"], meta["name"])
        message = f"stopped after {idle_timeout(nb):g} idle minutes; opening {url} starts it again"
        status.update(phase="Idle", message=message)
        set_condition(status, "Ready", False, "Idle", message, meta.get("generation"))
        await self.events.record(nb, "Culled", message)

    async def ask_jupyter(self, nb: dict[str, Any], origin: str, token: str) -> None:
        """Fold Jupyter's own last activity (kernels busy without traffic) into ours.

        ``origin`` is where the notebook's server listens (``http://HOST:PORT``),
        ``token`` the one it wants.
        """
        if nb["spec"].get("type", "jupyter") != "jupyter":
            return
        meta = nb["metadata"]
        url = f"{origin}{base_path(meta['namespace'], meta['name'])}api/status"
        try:
            async with (
                aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=2)) as session,
                session.get(url, headers={"Authorization": f"token {token}"}) as response,
            ):
                body = await response.json()
        except (aiohttp.ClientError, TimeoutError, ValueError):
            return
        last = body.get("last_activity") if isinstance(body, dict) else None
        if isinstance(last, str):
            with contextlib.suppress(ValueError):
                moment = datetime.fromisoformat(last.replace("Z", "+00:00")).timestamp()
                self.activity.saw(meta["namespace"], meta["name"], moment)
