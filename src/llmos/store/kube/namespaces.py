"""The Kubernetes namespaces the cluster-mode store puts objects in.

A namespaced LLMOS object lives in the Kubernetes namespace of the same name,
created on first use and labelled as LLMOS's; an LLMOS Namespace is also one,
and deleting it deletes the Kubernetes namespace (with what is left in it) only
when LLMOS made it.
"""

from __future__ import annotations

import logging

from llmos._lib.errors import Reason
from llmos.store.errors import StoreError
from llmos.store.kube.client import KubeClient

MANAGED_BY = "app.kubernetes.io/managed-by"

log = logging.getLogger(__name__)


class KubeNamespaces:
    def __init__(self, client: KubeClient) -> None:
        self.client = client
        self._seen: set[str] = set()

    async def ensure(self, namespace: str) -> None:
        """Create the Kubernetes namespace that namespaced objects of ``namespace`` need."""
        if namespace in self._seen:
            return
        body = {
            "apiVersion": "v1",
            "kind": "Namespace",
            "metadata": {"name": namespace, "labels": {MANAGED_BY: "llmos"}},
        }
        try:
            await self.client.request("POST", "/api/v1/namespaces", body=body, name=namespace)
        except StoreError as exc:
            if exc.reason != Reason.ALREADY_EXISTS:
                raise
        self._seen.add(namespace)

    async def drop(self, namespace: str) -> None:
        """Delete a Kubernetes namespace that this store created, with what is left in it."""
        self._seen.discard(namespace)
        where = f"/api/v1/namespaces/{namespace}"
        try:
            current = await self.client.request("GET", where)
            if (current["metadata"].get("labels") or {}).get(MANAGED_BY) == "llmos":
                await self.client.request("DELETE", where)
        except StoreError as exc:
            if exc.reason != Reason.NOT_FOUND:
                log.warning("could not delete Kubernetes namespace %s: %s", namespace, exc)
