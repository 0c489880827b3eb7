"""KubeStore: the cluster-mode ResourceStore, on LLMOS's CRDs in a Kubernetes API server.

Every LLMOS object is a custom resource of the CRD that ``llmos.install.crds``
makes for its kind, so the API server (and etcd under it) keeps the
Kubernetes semantics that ``store.base`` asks for: revisions are etcd's,
updates that name a stale ``resourceVersion`` conflict, only spec moves
``generation`` (the CRDs have a status subresource), finalizers hold a delete,
and watches resume from a revision or end with Gone.

What differs from the SQLite store, and why:
- cascading deletes through ``ownerReferences`` are Kubernetes' garbage
  collector's job (kube-controller-manager), so they happen shortly after the
  owner goes, not in the same transaction;
- an update is a read, a merge of what may change (labels, annotations,
  finalizers, owner references, spec), and a replace guarded by the
  resourceVersion; without one in the request it retries on a conflict;
- a create that carries a status is two writes: the API server drops status on
  create, so the store then writes it through the status subresource;
- an LLMOS Namespace is also a Kubernetes namespace (labelled managed-by llmos),
  made with it and deleted when it goes; a namespaced object's Kubernetes
  namespace is otherwise created on first use;
- a watch that asks for a revision older than the API server keeps fails with
  Gone on its first event rather than when it is opened (Kubernetes answers such
  a watch with 200 and an ERROR event).
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Collection, Sequence
from typing import Any

from llmos._lib.errors import Cause, LLMOSError, Reason
from llmos.resources.registry import KIND_REGISTRY, KindInfo
from llmos.store import errors
from llmos.store.base import ObjectList, WatchEvent
from llmos.store.errors import StoreError
from llmos.store.kube.client import KubeClient, KubeConnection
from llmos.store.kube.lease import KubeLease
from llmos.store.kube.namespaces import KubeNamespaces
from llmos.store.kube.objects import (
    clean,
    decode_continue,
    dumps,
    encode_continue,
    for_create,
    kind_info,
    merged_update,
    path,
    selector_text,
)
from llmos.store.kube.secrets import SecretTable
from llmos.store.kube.watch import chained, event_of, open_stream
from llmos.store.selector import Selector

log = logging.getLogger(__name__)

SYSTEM_NAMESPACE = "llmos-system"
_UPDATE_RETRIES = 5


class KubeStore:
    """The cluster-mode ResourceStore. The CRDs must already be installed."""

    def __init__(self, connection: KubeConnection, *, system_namespace: str = SYSTEM_NAMESPACE):
        self.client = KubeClient(connection)
        self._namespaces = KubeNamespaces(self.client)
        self._system_namespace = system_namespace
        self._secrets = SecretTable(self.client, system_namespace, self._namespaces.ensure)

    # -- reads ------------------------------------------------------------------

    async def get(self, resource: str, namespace: str, name: str) -> dict[str, Any]:
        info = kind_info(resource)
        obj = await self.client.request(
            "GET", path(info, namespace, name), kind=info.kind, name=name, namespace=namespace
        )
        return clean(obj)

    async def get_raw(self, resource: str, namespace: str, name: str) -> str:
        return dumps(await self.get(resource, namespace, name))

    async def list(
        self,
        resource: str,
        namespace: str | None = None,
        *,
        selector: Selector | None = None,
        limit: int | None = None,
        continue_token: str | None = None,
        namespaces: Collection[str] | None = None,
    ) -> ObjectList:
        info = kind_info(resource)
        if namespaces is not None and namespace is None and info.namespaced:
            return await self._list_namespaces(
                info, sorted(namespaces), selector, limit, continue_token
            )
        params = self._list_params(selector, limit, continue_token)
        page = await self.client.request("GET", path(info, namespace), params=params)
        return self._page(page)

    @staticmethod
    def _list_params(
        selector: Selector | None, limit: int | None, continue_token: str | None
    ) -> dict[str, str]:
        params: dict[str, str] = {}
        text = selector_text(selector)
        if text:
            params["labelSelector"] = text
        if limit:
            params["limit"] = str(limit)
        if continue_token:
            params["continue"] = continue_token
        return params

    @staticmethod
    def _page(page: dict[str, Any]) -> ObjectList:
        meta = page.get("metadata") or {}
        items = [dumps(clean(item)) for item in page.get("items") or []]
        remaining = meta.get("remainingItemCount")
        return ObjectList(
            raw_items=items,
            resource_version=int(meta.get("resourceVersion") or 0),
            continue_token=meta.get("continue") or None,
            remaining=int(remaining) if remaining is not None else None,
        )

    async def _list_namespaces(
        self,
        info: KindInfo,
        namespaces: Sequence[str],
        selector: Selector | None,
        limit: int | None,
        continue_token: str | None,
    ) -> ObjectList:
        """Several namespaces, one after another, all read at one revision."""
        state = decode_continue(continue_token) if continue_token else None
        start = list(namespaces).index(state["ns"]) if state and state["ns"] in namespaces else 0
        inner: str | None = state.get("c") if state else None
        at: int | None = state.get("rv") if state else None
        raw_items: list[str] = []
        for index in range(start, len(namespaces)):
            want = None if limit is None else limit - len(raw_items)
            if want == 0:
                token = encode_continue({"ns": namespaces[index], "c": None, "rv": at})
                return ObjectList(raw_items, at or 0, token)
            params = self._list_params(selector, want, inner)
            if at is not None and inner is None:
                params.update(resourceVersion=str(at), resourceVersionMatch="Exact")
            page = self._page(
                await self.client.request("GET", path(info, namespaces[index]), params=params)
            )
            at = page.resource_version if at is None else at
            raw_items.extend(page.raw_items)
            inner = None
            if page.continue_token:
                token = encode_continue(
                    {"ns": namespaces[index], "c": page.continue_token, "rv": at}
                )
                return ObjectList(raw_items, at, token)
        if at is None:
            at = await self.current_revision()
        return ObjectList(raw_items, at)

    async def missing_kinds(self) -> Sequence[str]:
        """The LLMOS kinds whose CRDs the API server does not serve (empty when installed)."""
        missing: list[str] = []
        for group in sorted({info.group for info in KIND_REGISTRY.kinds}):
            try:
                served = await self.client.request("GET", f"/apis/{group}/v1")
            except StoreError as exc:
                if exc.reason != Reason.NOT_FOUND:
                    raise
                served = {}
            plurals = {entry.get("name") for entry in served.get("resources") or []}
            missing += [
                info.kind
                for info in KIND_REGISTRY.kinds
                if info.group == group and info.kube_plural not in plurals
            ]
        return missing

    async def current_revision(self) -> int:
        # A list is read from etcd at its latest revision; any kind will do.
        page = await self.client.request(
            "GET", "/apis/management.llmos.ai/v1/settings", params={"limit": "1"}
        )
        return int(page["metadata"]["resourceVersion"])

    async def get_secret(self, resource: str, namespace: str, name: str) -> dict[str, Any]:
        info = kind_info(resource)
        try:
            obj = await self.get(resource, namespace, name)
        except StoreError as exc:
            if exc.reason == Reason.NOT_FOUND:
                return {}
            raise
        return await self._secrets.get(info, namespace, name, obj["metadata"]["uid"])

    # -- writes -----------------------------------------------------------------

    async def create(
        self, resource: str, obj: dict[str, Any], *, secret: dict[str, Any] | None = None
    ) -> dict[str, Any]:
        info = kind_info(resource)
        body = for_create(obj)
        meta = body["metadata"]
        namespace = meta.get("namespace") or ""
        name = meta.get("name") or meta.get("generateName") or ""
        await self._check_owners(body)
        where = path(info, namespace)
        try:
            created = await self.client.request(
                "POST", where, body=body, kind=info.kind, name=name, namespace=namespace
            )
        except StoreError as exc:
            if not (info.namespaced and namespace and exc.reason == Reason.NOT_FOUND):
                raise
            await self._namespaces.ensure(namespace)
            created = await self.client.request(
                "POST", where, body=body, kind=info.kind, name=name, namespace=namespace
            )
        clean(created)
        if body.get("status") and created.get("status") != body["status"]:
            # The status subresource makes the API server drop status on create; SQLite
            # keeps it (a Node or GPUDevice is registered with its status), so write it.
            created["status"] = body["status"]
            created = clean(
                await self.client.request(
                    "PUT",
                    path(info, namespace, created["metadata"]["name"], "status"),
                    body=created,
                    kind=info.kind,
                    name=created["metadata"]["name"],
                    namespace=namespace,
                )
            )
        if secret is not None:
            await self._secrets.put(info, created, secret)
        if _is_llmos_namespace(info):  # an LLMOS namespace is a Kubernetes namespace too
            await self._namespaces.ensure(created["metadata"]["name"])
        return created

    async def update(
        self, resource: str, obj: dict[str, Any], *, secret: dict[str, Any] | None = None
    ) -> dict[str, Any]:
        return await self._update(resource, obj, secret, status_only=False)

    async def update_status(self, resource: str, obj: dict[str, Any]) -> dict[str, Any]:
        return await self._update(resource, obj, None, status_only=True)

    async def _update(
        self,
        resource: str,
        obj: dict[str, Any],
        secret: dict[str, Any] | None,
        *,
        status_only: bool,
    ) -> dict[str, Any]:
        info = kind_info(resource)
        sent_meta = obj.get("metadata") or {}
        namespace, name = sent_meta.get("namespace") or "", sent_meta.get("name") or ""
        sent_rv = sent_meta.get("resourceVersion") or None
        for _ in range(_UPDATE_RETRIES):
            current = await self.get(resource, namespace, name)
            current_rv = current["metadata"]["resourceVersion"]
            if sent_rv and sent_rv != current_rv:
                raise errors.conflict(info.kind, name, sent_rv, current_rv)
            new = merged_update(current, obj, status_only)
            if new == current:
                if secret is not None:
                    await self._secrets.put(info, current, secret)
                return current
            if not status_only:
                await self._check_owners(new)
            try:
                updated = await self.client.request(
                    "PUT",
                    path(info, namespace, name, "status" if status_only else ""),
                    body=new,
                    kind=info.kind,
                    name=name,
                    namespace=namespace,
                )
            except StoreError as exc:
                if exc.reason == Reason.CONFLICT and not sent_rv:
                    continue  # someone else wrote first; merge again onto theirs
                if exc.reason == Reason.CONFLICT:
                    raise errors.conflict(info.kind, name, sent_rv or "", "newer") from exc
                raise
            clean(updated)
            if secret is not None:
                await self._secrets.put(info, updated, secret)
            if updated["metadata"].get("deletionTimestamp") and not updated["metadata"].get(
                "finalizers"
            ):
                await self._gone(info, namespace, name)  # its last finalizer went
            return updated
        raise StoreError(
            f"{info.kind} {name!r} kept changing while LLMOS updated it; retry",
            Reason.CONFLICT,
            kind=info.kind,
            name=name,
        )

    async def delete(
        self,
        resource: str,
        namespace: str,
        name: str,
        *,
        resource_version: str | None = None,
    ) -> dict[str, Any]:
        info = kind_info(resource)
        options: dict[str, Any] = {
            "apiVersion": "v1",
            "kind": "DeleteOptions",
            "propagationPolicy": "Background",
        }
        if resource_version:
            options["preconditions"] = {"resourceVersion": resource_version}
        try:
            last = await self.client.request(
                "DELETE",
                path(info, namespace, name),
                body=options,
                kind=info.kind,
                name=name,
                namespace=namespace,
            )
        except StoreError as exc:
            if exc.reason == Reason.CONFLICT and resource_version:
                current = await self.get(resource, namespace, name)
                raise errors.conflict(
                    info.kind, name, resource_version, current["metadata"]["resourceVersion"]
                ) from exc
            raise
        clean(last)
        if not last["metadata"].get("finalizers"):
            await self._gone(info, namespace, name)
        return last

    async def _gone(self, info: KindInfo, namespace: str, name: str) -> None:
        """Clean up after an object that no longer exists: its secret, its namespace."""
        await self._secrets.drop(info, namespace, name)
        if _is_llmos_namespace(info):
            await self._namespaces.drop(name)

    # -- watches ------------------------------------------------------------------

    async def watch(
        self,
        resource: str,
        namespace: str | None = None,
        *,
        resource_version: int | None = None,
        selector: Selector | None = None,
        namespaces: Collection[str] | None = None,
        bookmark_interval: float | None = None,
    ) -> AsyncIterator[WatchEvent]:
        info = kind_info(resource)
        scope = namespace if info.namespaced else None
        wanted = namespaces if info.namespaced and namespace is None else None
        text = selector_text(selector)
        backlog: list[WatchEvent] = []
        if resource_version is None:
            page = await self.client.request(
                "GET", path(info, scope), params={"labelSelector": text} if text else None
            )
            for item in page.get("items") or []:
                event = event_of(resource, "ADDED", item)
                if wanted is None or event.namespace in wanted:
                    backlog.append(event)
            resource_version = int(page["metadata"]["resourceVersion"])
        params = {"resourceVersion": str(resource_version)}
        if text:
            params["labelSelector"] = text
        stream = await open_stream(
            self.client,
            resource,
            path(info, scope),
            params,
            since=resource_version,
            namespaces=wanted,
            bookmark_interval=bookmark_interval,
        )
        return chained(backlog, stream)

    def leader_lock(self, name: str = "llmos-controllers") -> KubeLease:
        """The Lease that elects which server replica runs the controllers."""
        return KubeLease(self.client, self._system_namespace, name, self._namespaces.ensure)

    # -- helpers ------------------------------------------------------------------

    async def _check_owners(self, obj: dict[str, Any]) -> None:
        """Refuse owner references to objects that do not exist, as the SQLite store does."""
        meta = obj.get("metadata") or {}
        for index, ref in enumerate(meta.get("ownerReferences") or []):
            info = KIND_REGISTRY.by_kind(ref.get("kind", ""))
            found = None
            if info is not None:
                try:
                    found = await self.get(info.resource, meta.get("namespace") or "", ref["name"])
                except StoreError as exc:
                    if exc.reason != Reason.NOT_FOUND:
                        raise
            if found is None or found["metadata"]["uid"] != ref.get("uid"):
                field = f"metadata.ownerReferences[{index}].uid"
                raise LLMOSError(
                    f"{field}: owner {ref.get('kind')} {ref.get('name')!r} with uid "
                    f"{ref.get('uid')} does not exist",
                    Reason.INVALID,
                    causes=[Cause(field, "owner not found")],
                )

    async def close(self) -> None:
        await self.client.close()


def _is_llmos_namespace(info: KindInfo) -> bool:
    return info.kind == "Namespace" and info.group == "management.llmos.ai"
