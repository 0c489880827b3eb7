"""At start, delete the replica logs of workloads that are no longer in the store.

A workload's controller deletes its replicas' log files when the object is
deleted (``Runtime.forget_logs``), so a new object of the same name starts with
none. An object that went while no controller handled it leaves its files: one
without a finalizer (a Notebook, an MLCluster, a ModelService scaled to zero)
deleted just before the server stopped, or one deleted by an older LLMOS,
which kept the logs. :func:`forget_orphan_logs` runs once, before the controllers
start, and deletes for each workload kind the files of the replicas whose
object is not listed. It deletes only under the kinds' own key roots, never
the files of a replica that runs, and nothing at all of a kind it cannot list.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from llmos._lib.errors import LLMOSError
from llmos.controllers import mlcluster, model_replica, modelservice, notebook
from llmos.runtime.base import Runtime
from llmos.store.base import ResourceStore, list_all

__all__ = ["WORKLOADS", "forget_orphan_logs"]

log = logging.getLogger(__name__)

# Each kind whose objects own replicas: its resource, the root of its replicas' keys,
# and the key prefix of one object's replicas (which starts with that root).
WORKLOADS: tuple[tuple[str, str, Callable[[str, str], str]], ...] = (
    (modelservice.MODELSERVICES, "modelservices/", model_replica.replica_prefix),
    (notebook.NOTEBOOKS, "notebooks/", notebook.replica_prefix),
    (mlcluster.MLCLUSTERS, "mlclusters/", mlcluster.cluster_prefix),
)


async def forget_orphan_logs(store: ResourceStore, runtime: Runtime) -> int:
    """Delete the logs of replicas whose workload is gone; how many replicas' logs went."""
    deleted = 0
    for resource, root, prefix_of in WORKLOADS:
        try:
            live = await _prefixes(store, resource, prefix_of)
        except LLMOSError as exc:
            log.warning("kept the logs of deleted %s: cannot list them: %s", resource, exc)
            continue
        deleted += runtime.forget_logs(root, keep=live)
    if deleted:
        log.info("deleted the logs of %d replica(s) of deleted workloads", deleted)
    return deleted


async def _prefixes(
    store: ResourceStore, resource: str, prefix_of: Callable[[str, str], str]
) -> list[str]:
    """The key prefix of every object of ``resource`` in the store."""
    return [
        prefix_of(obj["metadata"]["namespace"], obj["metadata"]["name"])
        async for obj in list_all(store, resource)
    ]
