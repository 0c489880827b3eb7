"""Two controller replicas on one cluster: only the Lease holder reconciles; failover in a lease."""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter
from typing import Any

import pytest

from kubeplane import KubeCluster
from llmos.controllers.leader import LeaderElector
from llmos.controllers.loop import Controller, Manager, ObjectKey
from llmos.store.kube.client import KubeConnection
from llmos.store.kube.store import KubeStore

R = "events.node.llmos.ai"  # no LLMOS controller reconciles Events
LEASE, DEADLINE, RETRY = 3.0, 2.0, 0.3


def event(namespace: str, name: str) -> dict[str, Any]:
    return {
        "apiVersion": "node.llmos.ai/v1",
        "kind": "Event",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {"involvedObject": {"kind": "Thing", "name": "x"}, "reason": "Test"},
    }


class Counting:
    resource = R

    def __init__(self, namespace: str, seen: Counter[str], replica: str) -> None:
        self.namespace, self.seen, self.replica = namespace, seen, replica

    async def reconcile(self, key: ObjectKey) -> float | None:
        if key.namespace == self.namespace:
            self.seen[f"{self.replica}/{key.name}"] += 1
        return None


class Replica:
    def __init__(self, cluster: KubeCluster, name: str, lease: str, ns: str, seen: Counter[str]):
        connection = KubeConnection(cluster.url, cluster.token, cluster.ca_file.read_bytes())
        self.store = KubeStore(connection)
        self.manager = Manager()
        self.manager.add(Controller(self.store, Counting(ns, seen, name), resync_seconds=3600))
        self.elector = LeaderElector(
            self.store.leader_lock(lease),
            name,
            on_started=self.manager.start,
            on_stopped=self.manager.stop,
            lease_seconds=LEASE,
            renew_deadline=DEADLINE,
            retry_seconds=RETRY,
        )


async def until(check: Any, timeout: float) -> float:
    """Wait for ``check()``; return how long it took."""
    loop = asyncio.get_running_loop()
    start = loop.time()
    while not check():
        assert loop.time() - start < timeout, "condition not met in time"
        await asyncio.sleep(0.05)
    return loop.time() - start


@pytest.mark.slow
def test_only_the_leader_reconciles_and_a_partitioned_leader_is_replaced(
    kube_crds: KubeCluster,
) -> None:
    async def main() -> None:
        ns, lease, seen = (
            f"l-{uuid.uuid4().hex[:8]}",
            f"test-{uuid.uuid4().hex[:8]}",
            Counter[str](),
        )
        a = Replica(kube_crds, "a", lease, ns, seen)
        b = Replica(kube_crds, "b", lease, ns, seen)
        writer = Replica(kube_crds, "writer", lease, ns, seen).store
        try:
            await a.elector.start()
            await until(lambda: a.elector.leading, 10)
            await b.elector.start()
            await writer.create(R, event(ns, "first"))
            await until(lambda: seen["a/first"] >= 1, 10)
            await asyncio.sleep(3 * RETRY)
            assert not b.elector.leading and seen["b/first"] == 0

            await a.store.close()  # a loses the API server: it cannot renew
            took = await until(lambda: b.elector.leading, LEASE + 10)
            assert took <= LEASE + 2.0, f"failover took {took:.1f} s"
            await until(lambda: a.elector.lost.is_set(), DEADLINE + 5)
            assert not a.elector.leading
            await writer.create(R, event(ns, "second"))
            await until(lambda: seen["b/second"] >= 1, 10)
            assert seen["a/second"] == 0
        finally:
            await b.elector.stop()
            await a.elector.stop()
            await b.store.close()
            await writer.close()

    asyncio.run(main())


@pytest.mark.slow
def test_a_leader_that_stops_hands_the_lease_over_at_once(kube_crds: KubeCluster) -> None:
    async def main() -> None:
        ns, lease, seen = (
            f"l-{uuid.uuid4().hex[:8]}",
            f"test-{uuid.uuid4().hex[:8]}",
            Counter[str](),
        )
        a = Replica(kube_crds, "a", lease, ns, seen)
        b = Replica(kube_crds, "b", lease, ns, seen)
        try:
            await a.elector.start()
            await until(lambda: a.elector.leading, 10)
            await b.elector.start()
            await a.elector.stop()  # releases the Lease
            took = await until(lambda: b.elector.leading, LEASE + 10)
            assert took < LEASE, f"hand-over took {took:.1f} s, as long as a lease"
        finally:
            await b.elector.stop()
            await a.store.close()
            await b.store.close()

    asyncio.run(main())
