"""Which nodes' model caches hold which models: what a ModelService's pods prefer.

Cluster mode fetches a ModelService's model into its node's own cache (a
hostPath, the ``kube-model-cache-path`` Setting), where the files stay: another
pod of the same model on that node starts without downloading them again.
:class:`~llmos.runtime.kube.runtime.KubeRuntime` notes (:meth:`ModelCacheRecord.note`),
whenever it observes a ModelService, the nodes where one of its pods is Ready,
which its init container only lets happen once the files are there; it renders
every ModelService's StatefulSet to prefer the nodes noted for the same model
(:meth:`ModelCacheRecord.nodes`, :func:`~llmos.runtime.kube.render.cache_affinity`).

The record is one ConfigMap, ``llmos-model-cache`` in the server's namespace,
rather than each ModelService's status, because the files outlive the
ModelService that fetched them: one deleted and made again, one changed to
another model and back, or another one of the same model in any namespace
finds them. It is bounded (the :data:`MAX_NODES` nodes noted last per model,
the :data:`MAX_MODELS` models noted last), re-read every
:data:`REFRESH_SECONDS` (another server may have been the leader meanwhile),
and never fails a reconcile: one that cannot be read or written (an install
whose role lacks it) is warned about and tried again after
:data:`REFRESH_SECONDS`, what was last read standing meanwhile. It is only a
preference, so a stale entry (a node whose disk was wiped, or that is gone)
costs at most the download that would have happened anyway.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable, Iterable
from time import monotonic
from typing import TYPE_CHECKING, Any

from llmos._lib.errors import LLMOSError, Reason
from llmos.runtime.kube.render import KubeSettings, Unsupported, fetch_source

if TYPE_CHECKING:  # runtime.py imports this module
    from llmos.runtime.kube.runtime import KubeAPI

log = logging.getLogger(__name__)

CONFIGMAP = "llmos-model-cache"
KEY = "models.json"  # the ConfigMap's one key: [{"model": REF, "nodes": [...]}, ...], newest first
MAX_MODELS = 200
MAX_NODES = 16
REFRESH_SECONDS = 60.0


def model_ref(ms: dict[str, Any], settings: KubeSettings) -> str | None:
    """The model the init container fetches, as ``REGISTRY:MODEL`` (``bundled:NAME`` as it is).

    None for a local model (cluster mode needs it on every node already) and for
    one that cannot be fetched at all.
    """
    try:
        model, registry = fetch_source(ms, settings)
    except Unsupported:
        return None
    if registry == "local":
        return None
    return model if model.startswith("bundled:") else f"{registry}:{model}"


class ModelCacheRecord:
    """The ``llmos-model-cache`` ConfigMap, read at most every :data:`REFRESH_SECONDS`."""

    def __init__(self, client: KubeAPI, namespace: Callable[[], str]) -> None:
        self._client = client
        self._namespace = namespace
        self._models: dict[str, list[str]] = {}  # model ref -> nodes, newest first
        self._read_at: float | None = None  # monotonic; None: never read
        self._lock = asyncio.Lock()  # one read-merge-write at a time in this process
        # After a failure, no call until then (monotonic): one try per REFRESH_SECONDS.
        self._quiet_until = 0.0
        self._failing = False  # warned already: said again only after something worked

    def _path(self) -> str:
        return f"/api/v1/namespaces/{self._namespace()}/configmaps/{CONFIGMAP}"

    async def nodes(self, ref: str) -> list[str]:
        """The nodes noted as holding ``ref``, newest first, as last read (none if never)."""
        now = monotonic()
        stale = self._read_at is None or now - self._read_at > REFRESH_SECONDS
        if stale and now >= self._quiet_until:
            try:
                self._models = await self._read()
            except LLMOSError as exc:
                self._failed("read", exc)
                return []
            self._failing = False
        return list(self._models.get(ref, []))

    async def note(self, ref: str, nodes: Iterable[str]) -> None:
        """Record that ``nodes`` hold ``ref``; writes only when one of them is new to it."""
        noted = [node for node in dict.fromkeys(nodes) if node]
        if not noted or set(noted) <= set(await self.nodes(ref)):
            return
        if monotonic() < self._quiet_until:
            return
        async with self._lock:
            try:
                models = await self._read()  # afresh, to add to whatever is there now
                known = models.get(ref, [])
                fresh = [node for node in noted if node not in known]
                if fresh:
                    rest = {other: held for other, held in models.items() if other != ref}
                    newest = {ref: (fresh + known)[:MAX_NODES], **rest}
                    models = dict(list(newest.items())[:MAX_MODELS])
                    await self._write(models)
                    self._failing = False
                    log.info("the model cache of %s holds %s", ", ".join(fresh), ref)
            except LLMOSError as exc:
                self._failed("update", exc)
                return
            self._models = models

    async def _read(self) -> dict[str, list[str]]:
        try:
            found = await self._client.request("GET", self._path())
        except LLMOSError as exc:
            if exc.reason != Reason.NOT_FOUND:
                raise
            found = {}
        self._read_at = monotonic()
        text = (found.get("data") or {}).get(KEY) or "[]"
        try:
            entries = json.loads(text)
            return {
                str(entry["model"]): [str(node) for node in entry["nodes"]][:MAX_NODES]
                for entry in entries[:MAX_MODELS]
            }
        except (ValueError, TypeError, KeyError) as exc:
            log.warning(
                "the ConfigMap %s is not what LLMOS wrote (%s); starting afresh", CONFIGMAP, exc
            )
            return {}

    async def _write(self, models: dict[str, list[str]]) -> None:
        entries = [{"model": ref, "nodes": nodes} for ref, nodes in models.items()]
        body = {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {
                "name": CONFIGMAP,
                "namespace": self._namespace(),
                "labels": {"app.kubernetes.io/part-of": "llmos"},
            },
            "data": {KEY: json.dumps(entries, separators=(",", ":"))},
        }
        await self._client.request(
            "PATCH",
            self._path(),
            body=body,
            params={"fieldManager": "llmos", "force": "true"},
            content_type="application/apply-patch+yaml",
        )

    def _failed(self, what: str, exc: LLMOSError) -> None:
        level = logging.DEBUG if self._failing else logging.WARNING
        log.log(
            level,
            "could not %s the ConfigMap %s/%s (%s); ModelServices are placed without "
            "preferring the nodes that hold their model until it can be",
            what,
            self._namespace(),
            CONFIGMAP,
            exc,
        )
        self._failing = True
        self._quiet_until = monotonic() + REFRESH_SECONDS
