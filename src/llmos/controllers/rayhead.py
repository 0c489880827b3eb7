"""What a running Ray cluster says about itself, read from its head's dashboard.

The MLCluster controller calls :func:`read_cluster` on each reconcile of a
cluster whose head is up. Three GETs on the dashboard (127.0.0.1, with the
cluster's Ray token): ``/api/v0/nodes`` (nodes and their state),
``/api/cluster_status`` (resources used and total, and demands that wait for
resources) and ``/api/jobs/`` (jobs that run or wait). Ray's answers are
reduced to a :class:`ClusterView`; anything unexpected is an error the caller
reports and retries.

Once per head process :class:`JobsWarmUp` also calls :func:`warm_jobs_api`:
Ray's Jobs API connects its agent to the cluster (``ray.init``, about 1.5 s of
CPU here) on the first request that needs it, which would otherwise be the
user's first job submission. The cluster is Ready only once that answered.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import aiohttp

from llmos._lib.tasks import cancel_all

log = logging.getLogger(__name__)
ACTIVE_JOBS = frozenset({"PENDING", "RUNNING"})
# Ray's camelCased resource names in /api/cluster_status, and the names users know.
RESOURCE_NAMES = {"objectStoreMemory": "object_store_memory"}


class HeadUnreachable(Exception):
    """The head's dashboard did not answer as expected."""


@dataclass(frozen=True)
class RayNode:
    ip: str
    state: str  # ALIVE or DEAD
    head: bool


@dataclass(frozen=True)
class ClusterView:
    nodes: list[RayNode] = field(default_factory=list)
    total: dict[str, float] = field(default_factory=dict)
    available: dict[str, float] = field(default_factory=dict)
    active_jobs: int = 0
    # Tasks, actors or placement groups wait for resources no node has free.
    waiting: bool = False

    @property
    def busy(self) -> bool:
        """Jobs run or wait, or something holds resources (for idle scale-down)."""
        if self.active_jobs or self.waiting:
            return True
        return any(
            self.total.get(name, 0) - self.available.get(name, 0) > 1e-9 for name in ("CPU", "GPU")
        )

    def alive(self, ip: str) -> bool:
        return any(n.ip == ip and n.state == "ALIVE" for n in self.nodes)


async def _get(session: aiohttp.ClientSession, url: str) -> Any:
    async with session.get(url) as response:
        if response.status != 200:
            raise HeadUnreachable(f"GET {url}: HTTP {response.status}")
        return await response.json(content_type=None)


def _resources(usage: dict[str, Any]) -> tuple[dict[str, float], dict[str, float]]:
    total, available = {}, {}
    for raw, pair in usage.items():
        if raw.startswith("node:") or not isinstance(pair, list) or len(pair) != 2:
            continue
        name = RESOURCE_NAMES.get(raw, raw)
        used, whole = float(pair[0]), float(pair[1])
        total[name] = whole
        available[name] = max(0.0, whole - used)
    return total, available


async def read_cluster(port: int, token: str, timeout: float = 5.0) -> ClusterView:
    """Ask the head's dashboard on ``127.0.0.1:port``; HeadUnreachable when it will not say."""
    base = f"http://127.0.0.1:{port}"
    headers = {"Authorization": f"Bearer {token}"}
    try:
        async with aiohttp.ClientSession(
            headers=headers, timeout=aiohttp.ClientTimeout(total=timeout)
        ) as session:
            nodes, status, jobs = await asyncio.gather(
                _get(session, f"{base}/api/v0/nodes?detail=false&limit=1000"),
                _get(session, f"{base}/api/cluster_status"),
                _get(session, f"{base}/api/jobs/"),
            )
    except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
        raise HeadUnreachable(f"the Ray head did not answer: {exc}") from exc
    try:
        rows = nodes["data"]["result"]["result"]
        report = status["data"]["clusterStatus"]["loadMetricsReport"]
    except (KeyError, TypeError) as exc:
        raise HeadUnreachable(f"unexpected answer from the Ray dashboard: missing {exc}") from exc
    view_nodes = [
        RayNode(str(r.get("node_ip")), str(r.get("state")), bool(r.get("is_head_node")))
        for r in rows
    ]
    total, available = _resources(report.get("usage") or {})
    waiting = bool(
        report.get("resourceDemand") or report.get("pgDemand") or report.get("requestDemand")
    )
    active = sum(1 for job in jobs if isinstance(job, dict) and job.get("status") in ACTIVE_JOBS)
    return ClusterView(view_nodes, total, available, active, waiting)


# No job has this id: the agent connects to Ray to look it up, then answers 404.
_WARM_UP_PATH = "/api/job_agent/jobs/llmos-warm-up/logs"


async def warm_jobs_api(agent_port: int, token: str, timeout: float = 60.0) -> bool:
    """Have the node's dashboard agent connect its Jobs API to Ray now; whether it answered.

    Never raises: a warm-up that did not happen only leaves the first job slower.
    """
    url = f"http://127.0.0.1:{agent_port}{_WARM_UP_PATH}"
    try:
        async with (
            aiohttp.ClientSession(
                headers={"Authorization": f"Bearer {token}"},
                timeout=aiohttp.ClientTimeout(total=timeout),
            ) as session,
            session.get(url) as response,
        ):
            log.debug("warmed the Jobs API on port %d: HTTP %d", agent_port, response.status)
            return True
    except (aiohttp.ClientError, TimeoutError) as exc:
        log.debug("could not warm the Jobs API on port %d: %s", agent_port, exc)
        return False


class JobsWarmUp:
    """One warm-up per head process, in the background; one that failed is tried again.

    A cluster is Ready only once its head's Jobs API answered (:meth:`done`): until
    its dashboard agent has registered, Ray refuses a submission with a 500 ("No
    available agent to submit job") after waiting 10 s for it, which a busy node can
    take. ``wake(key)`` is called when a warm-up succeeds, so that the reconciler
    need not wait for its next refresh to say so.
    """

    def __init__(self, wake: Callable[[str], None] | None = None) -> None:
        self.wake = wake
        self._started: dict[str, int] = {}  # head key -> the head pid whose warm-up began
        self._done: dict[str, int] = {}  # head key -> the head pid whose Jobs API answered
        self._tasks: set[asyncio.Task[bool]] = set()

    def start(self, key: str, pid: int | None, agent_port: int, token: str) -> None:
        """Warm the head ``key`` (process ``pid``) up, unless that process was already."""
        if pid is None or self._started.get(key) == pid:
            return
        self._started[key] = pid
        task = asyncio.create_task(warm_jobs_api(agent_port, token))
        self._tasks.add(task)

        def finished(task: asyncio.Task[bool]) -> None:
            self._tasks.discard(task)
            if self._started.get(key) != pid:
                return  # forgotten, or another head process since
            if task.cancelled() or task.exception() is not None or not task.result():
                del self._started[key]  # tried again on the next reconcile
                return
            self._done[key] = pid
            if self.wake is not None:
                self.wake(key)

        task.add_done_callback(finished)

    def done(self, key: str, pid: int | None) -> bool:
        """Whether the Jobs API of head ``key``, process ``pid``, has answered."""
        return pid is not None and self._done.get(key) == pid

    def forget(self, key: str) -> None:
        self._started.pop(key, None)
        self._done.pop(key, None)

    async def close(self) -> None:
        await cancel_all(self._tasks)
