"""How full a Volume's PersistentVolumeClaim is, as the kubelets of the nodes that mount it say.

Used by :class:`~llmos.runtime.kube.runtime.KubeRuntime` when it observes a
Volume. A kubelet reports the bytes used on each volume its running pods mount
in its stats summary (``GET /api/v1/nodes/{node}/proxy/stats/summary``
through the API server, ``pods[].volume[].pvcRef``), which is what
``kubectl df-pv`` and the dashboard's tools read too. So usage is known only
while a running pod mounts the claim: the files cannot change otherwise, and
the caller keeps the last figure. A node whose kubelet does not answer is
skipped (logged once per node while it stays so); each node's summary is kept
for :data:`SUMMARY_TTL` seconds, since every Volume on the node reads it.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

from llmos._lib.errors import LLMOSError

log = logging.getLogger(__name__)
SUMMARY_TTL = 30.0

Get = Callable[[str], Awaitable[dict[str, Any]]]


def _mounts(pod: dict[str, Any], claim: str) -> bool:
    volumes = (pod.get("spec") or {}).get("volumes") or []
    return any((v.get("persistentVolumeClaim") or {}).get("claimName") == claim for v in volumes)


class VolumeUsage:
    """Bytes used on claims, from the kubelets' stats summaries (cached per node)."""

    def __init__(self, get: Get, clock: Callable[[], float] = time.monotonic) -> None:
        self._get = get
        self._clock = clock
        self._summaries: dict[str, tuple[float, dict[str, Any] | None]] = {}
        self._silent: set[str] = set()  # nodes whose kubelet did not answer last time

    async def used(self, namespace: str, claim: str) -> int | None:
        """Bytes used on ``claim``, or None while no running pod mounts it or no kubelet says."""
        page = await self._get(f"/api/v1/namespaces/{namespace}/pods")
        nodes = sorted(
            {
                pod["spec"]["nodeName"]
                for pod in page.get("items") or []
                if (pod.get("status") or {}).get("phase") == "Running"
                and (pod.get("spec") or {}).get("nodeName")
                and _mounts(pod, claim)
            }
        )
        found: int | None = None
        for node in nodes:
            summary = await self._summary(node)
            for pod in (summary or {}).get("pods") or []:
                for volume in pod.get("volume") or []:
                    ref = volume.get("pvcRef") or {}
                    ours = ref.get("name") == claim and ref.get("namespace") == namespace
                    if ours and isinstance(volume.get("usedBytes"), int):
                        found = max(found or 0, volume["usedBytes"])
        return found

    async def _summary(self, node: str) -> dict[str, Any] | None:
        now = self._clock()
        cached = self._summaries.get(node)
        if cached is not None and now - cached[0] < SUMMARY_TTL:
            return cached[1]
        summary: dict[str, Any] | None = None
        try:
            summary = await self._get(f"/api/v1/nodes/{node}/proxy/stats/summary")
            self._silent.discard(node)
        except LLMOSError as exc:
            if node not in self._silent:
                self._silent.add(node)
                log.info("no volume usage from node %s: its kubelet did not answer: %s", node, exc)
        self._summaries[node] = (now, summary)
        return summary
