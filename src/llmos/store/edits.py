"""Read-modify-write of one object's status, re-read and retried on a conflict.

For status fields that several writers share (a GPUDevice's allocations and
its readings; a Node's heartbeat and its CPU and memory reservations): each
writer changes only its part of what it read, and a write that lost a race is
done again on what won it.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

from llmos._lib.errors import LLMOSError, Reason
from llmos.store.base import ResourceStore

__all__ = ["edit_status"]

ATTEMPTS = 10


async def edit_status(
    store: ResourceStore,
    resource: str,
    kind: str,
    name: str,
    change: Callable[[dict[str, Any]], None],
) -> dict[str, Any] | None:
    """Apply ``change`` to the status of the cluster-scoped ``resource`` named ``name`` and
    save it, reading it again after a conflict.

    Returns the saved object (or the unchanged one, when ``change`` changed nothing),
    None if there is no such object. ``kind`` names it in the error of an object that
    keeps changing.
    """
    for _ in range(ATTEMPTS):
        try:
            obj = await store.get(resource, "", name)
        except LLMOSError as exc:
            if exc.reason == Reason.NOT_FOUND:
                return None
            raise
        status = copy.deepcopy(obj.get("status") or {})
        change(status)
        if status == (obj.get("status") or {}):
            return obj
        try:
            return await store.update_status(resource, {**obj, "status": status})
        except LLMOSError as exc:
            if exc.reason != Reason.CONFLICT:
                raise
    raise LLMOSError(f"{kind} {name} keeps changing; try again", Reason.CONFLICT)
