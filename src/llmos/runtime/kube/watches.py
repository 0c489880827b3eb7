"""Watching the children LLMOS made (pods, PVCs, RayClusters) so their owners reconcile at once.

Used by :class:`~llmos.runtime.kube.runtime.KubeRuntime`: one task per resource
lists and then watches everything carrying LLMOS's labels, and tells
``changed(labels, namespace)`` of every change (the runtime turns the labels
into the owning LLMOS object). A watch that ends is resumed from the last
revision seen; one that ends at once is not spun on; an expired revision lists
afresh. An optional API (KubeRay's RayCluster) that is not there yet is looked
for again every few seconds, since KubeRay may be installed after LLMOS.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Callable
from typing import Any, Protocol

from llmos._lib.errors import LLMOSError, Reason

log = logging.getLogger(__name__)
SELECTOR = "app.kubernetes.io/managed-by=llmos,llmos.ai/kind"
RETRY_SECONDS = 2.0
ABSENT_RETRY_SECONDS = 5.0  # an optional API (KubeRay's) that is not there yet

Changed = Callable[[dict[str, str], str], None]  # (labels, namespace)


class WatchAPI(Protocol):
    async def request(
        self, method: str, path: str, *, params: dict[str, str] | None = None
    ) -> dict[str, Any]: ...

    async def watch(
        self, path: str, params: dict[str, str], since: int
    ) -> AsyncIterator[tuple[str, dict[str, str], int]]: ...


async def watch_children(
    client: WatchAPI, resource: str, path: str, optional: bool, changed: Changed
) -> None:
    """Call ``changed`` for every change of an LLMOS-labelled child, for ever."""
    params = {"labelSelector": SELECTOR}
    absent = False
    while True:
        try:
            page = await client.request("GET", path, params=params)
            if absent:
                log.info("the %s API is there now; watching it", resource)
                absent = False
            since = int(page["metadata"]["resourceVersion"])
            for item in page.get("items") or []:
                changed(item["metadata"].get("labels") or {}, item["metadata"]["namespace"])
            while True:
                opened, events = time.monotonic(), 0
                async for namespace, labels, rv in await client.watch(path, params, since):
                    since = max(since, rv)
                    events += 1
                    changed(labels, namespace)
                if not events and time.monotonic() - opened < 1.0:
                    await asyncio.sleep(1.0)  # a stream that ends at once: do not spin
        except asyncio.CancelledError:
            raise
        except LLMOSError as exc:
            if optional and exc.reason == Reason.NOT_FOUND:
                if not absent:
                    log.info("no %s API in this cluster (yet); looking again", resource)
                absent = True
                await asyncio.sleep(ABSENT_RETRY_SECONDS)
                continue
            if exc.reason != Reason.GONE:
                log.warning("watching %s: %s; retrying", resource, exc)
                await asyncio.sleep(RETRY_SECONDS)
        except Exception:  # a watch must outlive any one bad answer
            log.exception("watching %s failed; retrying", resource)
            await asyncio.sleep(RETRY_SECONDS)
