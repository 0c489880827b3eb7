"""The secret data kept beside an object (password and token hashes), as Kubernetes Secrets.

The SQLite store keeps it in a table of its own keyed by the object's uid. Here
each object that has some gets one ``Secret`` named ``llmos.{kind}.{name}``, in
the object's namespace, or in the system namespace for cluster-scoped kinds
(User, Token). The Secret names its object as owner, so Kubernetes' garbage
collector removes it with the object; the store also removes it itself when it
deletes the object. The owner's uid is checked on read, so a Secret left from an
earlier object of the same name is never handed out.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Awaitable, Callable
from typing import Any

import orjson

from llmos._lib.errors import Reason
from llmos.resources.registry import KindInfo
from llmos.store.errors import StoreError
from llmos.store.kube.client import KubeClient

DATA_KEY = "llmos.json"
OWNER_UID = "llmos.ai/owner-uid"


class SecretTable:
    """Reads and writes the side secrets of LLMOS objects."""

    def __init__(
        self,
        client: KubeClient,
        system_namespace: str,
        ensure_namespace: Callable[[str], Awaitable[None]],
    ) -> None:
        self._client = client
        self._system_namespace = system_namespace
        self._ensure_namespace = ensure_namespace

    def _where(self, info: KindInfo, namespace: str, name: str) -> tuple[str, str]:
        secret_name = f"llmos.{info.singular}.{name}"
        if len(secret_name) > 253:
            secret_name = f"llmos.{info.singular}.{hashlib.sha256(name.encode()).hexdigest()}"
        return (namespace if info.namespaced else self._system_namespace), secret_name

    async def put(self, info: KindInfo, owner: dict[str, Any], data: dict[str, Any]) -> None:
        meta = owner["metadata"]
        namespace, name = self._where(info, meta.get("namespace") or "", meta["name"])
        body = {
            "apiVersion": "v1",
            "kind": "Secret",
            "type": "Opaque",
            "metadata": {
                "name": name,
                "namespace": namespace,
                "labels": {"app.kubernetes.io/managed-by": "llmos"},
                "annotations": {OWNER_UID: meta["uid"]},
                "ownerReferences": [
                    {
                        "apiVersion": info.api_version,
                        "kind": info.kind,
                        "name": meta["name"],
                        "uid": meta["uid"],
                    }
                ],
            },
            "data": {DATA_KEY: base64.b64encode(orjson.dumps(data)).decode()},
        }
        collection = f"/api/v1/namespaces/{namespace}/secrets"
        try:
            await self._client.request("PUT", f"{collection}/{name}", body=body, kind="Secret")
            return
        except StoreError as exc:
            if exc.reason != Reason.NOT_FOUND:
                raise
        await self._ensure_namespace(namespace)
        try:
            await self._client.request("POST", collection, body=body, kind="Secret", name=name)
        except StoreError as race:  # created meanwhile by another writer: replace it
            if race.reason != Reason.ALREADY_EXISTS:
                raise
            await self._client.request("PUT", f"{collection}/{name}", body=body, kind="Secret")

    async def get(self, info: KindInfo, namespace: str, name: str, uid: str) -> dict[str, Any]:
        where, secret_name = self._where(info, namespace, name)
        try:
            secret = await self._client.request(
                "GET", f"/api/v1/namespaces/{where}/secrets/{secret_name}", kind="Secret"
            )
        except StoreError as exc:
            if exc.reason == Reason.NOT_FOUND:
                return {}
            raise
        if (secret["metadata"].get("annotations") or {}).get(OWNER_UID) != uid:
            return {}
        encoded = (secret.get("data") or {}).get(DATA_KEY)
        if not encoded:
            return {}
        result: dict[str, Any] = orjson.loads(base64.b64decode(encoded))
        return result

    async def drop(self, info: KindInfo, namespace: str, name: str) -> None:
        where, secret_name = self._where(info, namespace, name)
        try:
            await self._client.request(
                "DELETE", f"/api/v1/namespaces/{where}/secrets/{secret_name}", kind="Secret"
            )
        except StoreError as exc:
            if exc.reason != Reason.NOT_FOUND:
                raise
