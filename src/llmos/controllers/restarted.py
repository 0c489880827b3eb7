"""At start in embedded mode, stop showing as Ready what the previous server ran.

The local runtime starts replicas afresh after a server restart (it never
adopts the previous server's, which died with it), so the Ready status that
server last wrote for a ModelService, Notebook or MLCluster is stale until the
workload's controller first reconciles it: a client polling for Ready would
take a process that is not there yet for one that serves, and the gateway
would route to a dead port. :func:`mark_restarting` runs once, before the
controllers and the HTTPS server start, and sets each such object's phase to
``Starting`` and its Ready condition to False (reason ``ServerRestarted``);
its controller then writes what it sees. A ModelService that routes to an
external ``spec.endpoint`` runs nothing here and is left alone.
"""

from __future__ import annotations

import logging
from typing import Any

from llmos._lib.errors import LLMOSError
from llmos.controllers.modelservice import MODELSERVICES
from llmos.controllers.orphan_logs import WORKLOADS
from llmos.resources.meta import set_condition
from llmos.store.base import ResourceStore, list_all

__all__ = ["RESTARTING", "mark_restarting"]

log = logging.getLogger(__name__)

RESTARTING = "the server restarted: starting its processes again"


async def mark_restarting(store: ResourceStore) -> int:
    """Mark every workload the previous server showed as Ready as starting; how many."""
    marked = 0
    for resource, _root, _prefix in WORKLOADS:
        try:
            stale = [obj async for obj in list_all(store, resource) if _ran_here(resource, obj)]
        except LLMOSError as exc:
            log.warning("cannot list %s to mark them starting: %s", resource, exc)
            continue
        for obj in stale:
            status = obj["status"]
            status.update(phase="Starting", message=RESTARTING)
            if "readyReplicas" in status:  # a ModelService's: none serves yet
                status.update(readyReplicas=0, endpoints=[])
            ready = next(c for c in status.get("conditions") or [] if c.get("type") == "Ready")
            generation = ready.get("observedGeneration")
            set_condition(status, "Ready", False, "ServerRestarted", RESTARTING, generation)
            try:
                await store.update_status(resource, obj)
            except LLMOSError as exc:  # changed or gone meanwhile: its controller will say
                log.debug("left %s %s as it was: %s", resource, obj["metadata"]["name"], exc)
                continue
            marked += 1
    if marked:
        log.info("marked %d workload(s) of the previous run as starting again", marked)
    return marked


def _ran_here(resource: str, obj: dict[str, Any]) -> bool:
    """Whether the object's status says Ready for processes the previous server ran."""
    status = obj.get("status") or {}
    if status.get("phase") != "Ready":
        return False
    if not any(c.get("type") == "Ready" for c in status.get("conditions") or []):
        return False
    return not (resource == MODELSERVICES and (obj.get("spec") or {}).get("endpoint"))
