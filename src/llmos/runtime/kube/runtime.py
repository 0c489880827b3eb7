"""KubeRuntime: run LLMOS workloads as Kubernetes objects, and say how they are doing.

Cluster mode's :class:`~llmos.runtime.base.WorkloadRuntime`. ``apply`` renders
an LLMOS object's children (:mod:`llmos.runtime.kube.render`) and applies them
with server-side apply (field manager ``llmos``), so a change to the LLMOS
object is one idempotent PATCH per child and Kubernetes keeps what others own.
``observe`` reads the children back and mirrors them
(:mod:`llmos.runtime.kube.mirror`). Watches on the pods, PVCs and RayClusters
that carry LLMOS's labels call the ``on_change`` handlers with the owner, so the
owner's controller reconciles as soon as a pod is scheduled, becomes ready or
crashes (:mod:`llmos.runtime.kube.watches`; the RayCluster watch waits for
KubeRay's API, which may come later). Deletion is Kubernetes' garbage
collector's: every child is owned. Observing a ModelService also notes the
nodes where its pods are Ready as holding its model, which later
ModelServices of that model prefer (:mod:`llmos.runtime.kube.model_cache`).

Kubernetes does the rest of what the local runtime does itself: it schedules
GPUs (``nvidia.com/gpu``), restarts with backoff, probes health, and keeps
logs (``logs`` reads them from the pods, :mod:`llmos.runtime.kube.logs`).
"""

from __future__ import annotations

import asyncio
import base64
import logging
import secrets
import time
from collections.abc import AsyncIterator, Callable
from typing import Any, Protocol

from llmos._lib.errors import LLMOSError, Reason
from llmos._lib.tasks import cancel_all
from llmos.runtime.base import ChangeHandler, Observed
from llmos.runtime.kube import mirror, render
from llmos.runtime.kube.logs import open_log
from llmos.runtime.kube.model_cache import ModelCacheRecord, model_ref
from llmos.runtime.kube.render import KubeSettings
from llmos.runtime.kube.watches import watch_children

log = logging.getLogger(__name__)


# (API path of the list, whether the API may be absent: KubeRay is optional)
_WATCHED = {
    "pods": ("/api/v1/pods", False),
    "persistentvolumeclaims": ("/api/v1/persistentvolumeclaims", False),
    "rayclusters": ("/apis/ray.io/v1/rayclusters", True),
}
_PATHS = {
    ("v1", "Secret"): "/api/v1/namespaces/{ns}/secrets",
    ("v1", "Service"): "/api/v1/namespaces/{ns}/services",
    ("v1", "PersistentVolumeClaim"): "/api/v1/namespaces/{ns}/persistentvolumeclaims",
    ("apps/v1", "StatefulSet"): "/apis/apps/v1/namespaces/{ns}/statefulsets",
    ("ray.io/v1", "RayCluster"): "/apis/ray.io/v1/namespaces/{ns}/rayclusters",
    ("networking.k8s.io/v1", "NetworkPolicy"): (
        "/apis/networking.k8s.io/v1/namespaces/{ns}/networkpolicies"
    ),
}
# What apply may delete, by LLMOS kind: never PVCs (users' files), nor what others make
# from our children with our labels (KubeRay's head Service, the pods).
_POLICY = ("networking.k8s.io/v1", "NetworkPolicy")
_PRUNABLE = {
    "ModelService": [("apps/v1", "StatefulSet"), ("v1", "Service"), ("v1", "Secret"), _POLICY],
    "Notebook": [("apps/v1", "StatefulSet"), ("v1", "Service"), ("v1", "Secret"), _POLICY],
    "MLCluster": [("ray.io/v1", "RayCluster"), ("v1", "Secret"), _POLICY],
}
_ADDRESS_SECONDS = 2.0  # how long a pod address found for the proxy is reused
_APPLIED_LIMIT = 10_000  # owners whose pruned children are remembered


class KubeAPI(Protocol):
    """The Kubernetes API as this runtime uses it (the kube store's client provides it)."""

    async def request(
        self,
        method: str,
        path: str,
        *,
        body: Any = None,
        params: dict[str, str] | None = None,
        kind: str = "",
        name: str = "",
        namespace: str = "",
        content_type: str = "application/json",
    ) -> dict[str, Any]: ...

    async def lines(self, path: str, params: dict[str, str]) -> AsyncIterator[str]:
        """A plain-text GET (a pod's log), line by line as it comes; ``follow`` keeps it open.

        Opens the stream before returning it: a refusal raises an :class:`LLMOSError`
        carrying the API server's own message (NOT_FOUND for 404, BAD_REQUEST for 400,
        SERVICE_UNAVAILABLE for anything else).
        """

    async def watch(
        self, path: str, params: dict[str, str], since: int
    ) -> AsyncIterator[tuple[str, dict[str, str], int]]:
        """Changes after ``since``: (namespace, labels, resourceVersion) of each object."""


def object_path(obj: dict[str, Any]) -> str:
    meta = obj["metadata"]
    base = _PATHS[(obj["apiVersion"], obj["kind"])].format(ns=meta["namespace"])
    return f"{base}/{meta['name']}"


class KubeRuntime:
    def __init__(self, client: KubeAPI, settings: Callable[[], KubeSettings]) -> None:
        self.client = client
        self.settings = settings
        self._handlers: list[ChangeHandler] = []
        self._tasks: list[asyncio.Task[None]] = []
        self._addresses: dict[tuple[str, str, str], tuple[float, str | None]] = {}
        # By owner uid: the children last applied and pruned to, with nothing left over.
        self._applied: dict[str, frozenset[tuple[str, str]]] = {}
        self._model_cache = ModelCacheRecord(client, lambda: self.settings().server_namespace)

    # -- lifecycle ------------------------------------------------------------------------

    async def start(self) -> None:
        for resource, (path, optional) in _WATCHED.items():
            self._tasks.append(
                asyncio.create_task(
                    watch_children(self.client, resource, path, optional, self._changed),
                    name=f"kube-{resource}",
                )
            )

    async def stop(self) -> None:
        await cancel_all(self._tasks)
        self._tasks.clear()

    def on_change(self, handler: ChangeHandler) -> None:
        self._handlers.append(handler)

    # -- apply and observe ------------------------------------------------------------------

    async def apply(self, obj: dict[str, Any], *, hf_token: str | None = None) -> None:
        """Make ``obj``'s children in the cluster match what ``obj`` asks for.

        Children it no longer asks for (a Secret for a token that was removed, the
        StatefulSet of a ModelService that now routes to an external endpoint) are
        deleted; PVCs never are, since they hold users' files. Looking for them takes
        a LIST per kind of child, so it is skipped while the object asks for the same
        children as when this process last pruned them all.
        """
        settings = self.settings()
        kind = obj["kind"]
        try:
            if kind == "ModelService":
                children = [] if obj["spec"].get("endpoint") else await self._serving(obj, hf_token)
            elif kind == "Notebook":
                children = render.notebook(obj, settings, await self._token(obj))
            elif kind == "MLCluster":
                children = render.mlcluster(obj, settings, await self._token(obj))
                await self._keep_autoscaled(children)
            else:
                children = render.volume(obj, settings)
        except render.Unsupported as exc:
            raise LLMOSError(str(exc), Reason.INVALID) from exc
        for child in children:
            await self._apply_one(child)
        # Its pods may go now (a notebook stopped or culled): find them afresh.
        self._addresses.pop((kind, obj["metadata"]["namespace"], obj["metadata"]["name"]), None)
        keep = frozenset((c["kind"], c["metadata"]["name"]) for c in children)
        uid = obj["metadata"]["uid"]
        if self._applied.get(uid) != keep:
            self._applied.pop(uid, None)
            if await self._prune(obj, keep):
                if len(self._applied) >= _APPLIED_LIMIT:
                    self._applied.clear()  # deleted owners' uids: forgetting only costs LISTs
                self._applied[uid] = keep

    async def _serving(self, ms: dict[str, Any], hf_token: str | None) -> list[dict[str, Any]]:
        """A ModelService's children, preferring the nodes that hold its model if no pod rolls."""
        settings = self.settings()
        ref = model_ref(ms, settings)
        cached_on = await self._model_cache.nodes(ref) if ref else []
        children = render.modelservice(ms, settings, hf_token, cached_on)
        for child in children:
            if child["kind"] == "StatefulSet":
                render.keep_running_placement(child, await self._get(object_path(child)))
        return children

    async def _keep_autoscaled(self, children: list[dict[str, Any]]) -> None:
        """Leave KubeRay's autoscaler its worker counts (and which workers to remove)."""
        for child in children:
            if child["kind"] != "RayCluster" or not child["spec"].get("enableInTreeAutoscaling"):
                continue
            live = await self._get(object_path(child))
            groups = {
                g["groupName"]: g
                for g in ((live or {}).get("spec") or {}).get("workerGroupSpecs") or []
            }
            for group in child["spec"]["workerGroupSpecs"]:
                current = groups.get(group["groupName"])
                if current is None:
                    continue
                replicas = int(current.get("replicas") or 0)
                group["replicas"] = max(group["minReplicas"], min(group["maxReplicas"], replicas))
                if current.get("scaleStrategy"):
                    group["scaleStrategy"] = current["scaleStrategy"]

    async def _prune(self, obj: dict[str, Any], keep: frozenset[tuple[str, str]]) -> bool:
        """Delete the object's children not in ``keep``; whether every deletion went through."""
        meta = obj["metadata"]
        complete = True
        selector = ",".join(f"{k}={v}" for k, v in render.labels(obj).items())
        for version, kind in _PRUNABLE.get(obj["kind"], ()):
            base = _PATHS[(version, kind)]
            path = base.format(ns=meta["namespace"])
            try:
                page = await self.client.request("GET", path, params={"labelSelector": selector})
            except LLMOSError as exc:
                if exc.reason == Reason.NOT_FOUND:  # no KubeRay
                    continue
                raise
            for item in page.get("items") or []:
                name = item["metadata"]["name"]
                if (kind, name) not in keep and not item["metadata"].get("deletionTimestamp"):
                    log.info(
                        "deleting %s %s/%s: %s no longer asks for it",
                        kind,
                        meta["namespace"],
                        name,
                        obj["kind"],
                    )
                    try:
                        await self.client.request("DELETE", f"{path}/{name}")
                    except LLMOSError as exc:
                        if exc.reason != Reason.NOT_FOUND:
                            complete = False  # looked for again on the next apply
        return complete

    async def _apply_one(self, child: dict[str, Any]) -> None:
        if child["kind"] == "PersistentVolumeClaim" and await self._get(object_path(child)):
            # A claim's class, modes and binding are fixed once made: leave it be.
            return
        try:
            await self.client.request(
                "PATCH",
                object_path(child),
                body=child,
                params={"fieldManager": "llmos", "force": "true"},
                content_type="application/apply-patch+yaml",
                kind=child["kind"],
                name=child["metadata"]["name"],
                namespace=child["metadata"]["namespace"],
            )
        except LLMOSError as exc:
            if exc.reason == Reason.NOT_FOUND and child["kind"] == "RayCluster":
                raise LLMOSError(
                    "this cluster has no KubeRay (the ray.io/v1 RayCluster API is missing): "
                    "install the KubeRay operator to run MLClusters",
                    Reason.SERVICE_UNAVAILABLE,
                ) from exc
            raise

    async def _token(self, obj: dict[str, Any]) -> str:
        """A Notebook's or MLCluster's own token, made once and kept in a Secret it owns."""
        # Only a Secret that is not there gets a new token: any other failure to read it
        # must not replace the token the running containers were started with.
        found = await self.secret_token(obj)
        if found:
            return found
        # Hex, so code-server takes it as its HASHED_PASSWORD (a SHA-256 in hex).
        return secrets.token_hex(32)

    async def secret_token(self, obj: dict[str, Any]) -> str | None:
        """The token in the object's Secret (``nb-NAME-token``, ``ray-NAME-token``), if made.

        What the notebook's or Ray's containers were started with: the workload proxy
        presents it.
        """
        name = render.secret_name(obj)
        found = await self._get(f"/api/v1/namespaces/{obj['metadata']['namespace']}/secrets/{name}")
        token = ((found or {}).get("data") or {}).get("token")
        return base64.b64decode(token).decode() if token else None

    async def observe(self, obj: dict[str, Any]) -> Observed:
        kind, meta = obj["kind"], obj["metadata"]
        ns, name = meta["namespace"], meta["name"]
        child = render.child_name(kind, name)
        if kind == "Volume":
            return mirror.claim(
                await self._get(f"/api/v1/namespaces/{ns}/persistentvolumeclaims/{child}")
            )
        if kind == "MLCluster":
            rc = await self._get(f"/apis/ray.io/v1/namespaces/{ns}/rayclusters/{child}")
            # KubeRay's pods carry the template's labels, so they are selected as ours.
            return mirror.raycluster(rc, await self.pods(obj) if rc is not None else [])
        pods = await self.pods(obj)
        if kind == "Notebook":
            wanted = 0 if obj["spec"].get("stopped") else 1
            observed = mirror.replicated(wanted, pods, render.NOTEBOOK_PORT, "notebook")
            observed.extra["url"] = render.notebook_path(obj)
            return observed
        ref = model_ref(obj, self.settings())
        if ref:
            ready = [p for p in pods if mirror.pod_ready(p)]
            await self._model_cache.note(ref, [p["spec"].get("nodeName", "") for p in ready])
        return mirror.replicated(int(obj["spec"].get("replicas", 1)), pods)

    async def address(
        self, obj: dict[str, Any], port: int, *, ray_head: bool = False
    ) -> str | None:
        """``http://IP:port`` of the object's ready pod (its Ray head's), or None.

        Read from the pods themselves, never from the object's status, which users
        with write access to it could point anywhere. Kept for a couple of seconds,
        since a notebook's page makes many requests at once.
        """
        meta = obj["metadata"]
        key = (obj["kind"], meta["namespace"], meta["name"])
        now = time.monotonic()
        cached = self._addresses.get(key)
        if cached is not None and now - cached[0] < _ADDRESS_SECONDS:
            return cached[1]
        pods = await self.pods(obj)
        if ray_head:
            pods = [
                p
                for p in pods
                if p["metadata"].get("labels", {}).get(mirror.RAY_NODE_TYPE) == "head"
            ]
        ips = [(p.get("status") or {}).get("podIP") for p in pods if mirror.pod_ready(p)]
        url = next((f"http://{ip}:{port}" for ip in ips if ip), None)
        self._addresses[key] = (now, url)
        return url

    async def pods(self, obj: dict[str, Any]) -> list[dict[str, Any]]:
        meta = obj["metadata"]
        selector = ",".join(f"{k}={v}" for k, v in render.labels(obj).items())
        page = await self.client.request(
            "GET",
            f"/api/v1/namespaces/{meta['namespace']}/pods",
            params={"labelSelector": selector},
        )
        return list(page.get("items") or [])

    async def _get(self, path: str) -> dict[str, Any] | None:
        try:
            return await self.client.request("GET", path)
        except LLMOSError as exc:
            if exc.reason == Reason.NOT_FOUND:
                return None
            raise

    async def logs(
        self,
        obj: dict[str, Any],
        replica: int = 0,
        *,
        follow: bool = False,
        tail: int | None = None,
    ) -> AsyncIterator[str]:
        """The log of one replica's main container, from its node's kubelet via the API server.

        Opens the log before returning its lines, so a log that cannot be read is an
        :class:`LLMOSError` naming the pod and why, not a stream that breaks off.
        """
        return await open_log(self.client, obj, replica, follow=follow, tail=tail)

    # -- watches ------------------------------------------------------------------------------

    def _changed(self, labels: dict[str, str], namespace: str) -> None:
        kind, name = labels.get(render.KIND_LABEL), labels.get(render.NAME_LABEL)
        if not kind or not name:
            return
        for handler in self._handlers:
            handler(kind, namespace, name)
