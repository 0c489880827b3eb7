"""A Kubernetes Lease (coordination.k8s.io/v1) as the controllers' leader lock.

Implements ``controllers.leader.LeaderLock`` the way client-go's
``resourcelock.LeaseLock`` does: the holder writes its identity and renew time;
another replica may take the Lease over once it has *seen* no renewal for the
lease's duration. Expiry is judged by this process's own monotonic clock from
the moment it observed the last change, never by comparing the remote
timestamps with the local clock, so clock skew between nodes cannot cut a lease
short. Every write names the resourceVersion it read, so two replicas racing
for an expired Lease cannot both win.
"""

from __future__ import annotations

import math
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

from llmos._lib.errors import Reason
from llmos.store.errors import StoreError
from llmos.store.kube.client import KubeClient


def _micro_time() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class KubeLease:
    """One named Lease in one namespace."""

    def __init__(
        self,
        client: KubeClient,
        namespace: str,
        name: str,
        ensure_namespace: Callable[[str], Awaitable[None]],
    ) -> None:
        self._client = client
        self._namespace = namespace
        self._name = name
        self._ensure_namespace = ensure_namespace
        self._observed: tuple[Any, ...] | None = None
        self._observed_at = 0.0

    @property
    def _path(self) -> str:
        return f"/apis/coordination.k8s.io/v1/namespaces/{self._namespace}/leases/{self._name}"

    async def acquire_or_renew(self, identity: str, lease_seconds: float) -> bool:
        try:
            current = await self._client.request("GET", self._path, kind="Lease", name=self._name)
        except StoreError as exc:
            if exc.reason != Reason.NOT_FOUND:
                raise
            return await self._create(identity, lease_seconds)
        spec: dict[str, Any] = current.get("spec") or {}
        holder = spec.get("holderIdentity") or ""
        record = (holder, spec.get("renewTime"), spec.get("leaseDurationSeconds"))
        now = time.monotonic()
        if record != self._observed:
            self._observed, self._observed_at = record, now
        duration = float(spec.get("leaseDurationSeconds") or lease_seconds)
        if holder and holder != identity and now < self._observed_at + duration:
            return False  # someone else holds it and has renewed within its lease
        stamp = _micro_time()
        new_spec = dict(spec)
        new_spec.update(
            holderIdentity=identity,
            leaseDurationSeconds=math.ceil(lease_seconds),
            renewTime=stamp,
        )
        if holder != identity:
            new_spec["acquireTime"] = stamp
            new_spec["leaseTransitions"] = int(spec.get("leaseTransitions") or 0) + 1
        current["spec"] = new_spec
        try:
            await self._client.request("PUT", self._path, body=current, kind="Lease")
        except StoreError as exc:
            if exc.reason == Reason.CONFLICT:
                return False  # another replica wrote first
            raise
        self._observed = (identity, stamp, new_spec["leaseDurationSeconds"])
        self._observed_at = time.monotonic()
        return True

    async def _create(self, identity: str, lease_seconds: float) -> bool:
        stamp = _micro_time()
        body = {
            "apiVersion": "coordination.k8s.io/v1",
            "kind": "Lease",
            "metadata": {"name": self._name, "namespace": self._namespace},
            "spec": {
                "holderIdentity": identity,
                "leaseDurationSeconds": math.ceil(lease_seconds),
                "acquireTime": stamp,
                "renewTime": stamp,
                "leaseTransitions": 0,
            },
        }
        collection = self._path.rsplit("/", 1)[0]
        await self._ensure_namespace(self._namespace)
        try:
            await self._client.request("POST", collection, body=body, kind="Lease")
        except StoreError as exc:
            if exc.reason == Reason.ALREADY_EXISTS:
                return False
            raise
        return True

    async def release(self, identity: str) -> None:
        """Hand the Lease back (holder cleared), so the next replica need not wait it out."""
        try:
            current = await self._client.request("GET", self._path, kind="Lease")
        except StoreError:
            return
        spec = current.get("spec") or {}
        if spec.get("holderIdentity") != identity:
            return
        spec.update(holderIdentity="", leaseDurationSeconds=1, renewTime=_micro_time())
        current["spec"] = spec
        try:
            await self._client.request("PUT", self._path, body=current, kind="Lease")
        except StoreError:
            return  # it expires by itself
