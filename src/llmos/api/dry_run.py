"""``?dryRun=All``: validate and admit a write as for real, store nothing.

The dashboard's forms use it on create to show errors before the user
submits. Updates, patches, status writes and deletes take it too (as
Kubernetes' do): checked the same way, answered with what would be stored
(or, for a delete, the object as it is), and nothing changes.
"""

from __future__ import annotations

from typing import Any

from fastapi import Request

from llmos._lib.errors import Cause, LLMOSError, Reason
from llmos._lib.names import random_suffix
from llmos.api.state import AppState
from llmos.resources.registry import KindInfo
from llmos.store.errors import conflict


def requested(request: Request) -> bool:
    """Whether the request asks for a dry run (``All`` is the one value Kubernetes has)."""
    value = request.query_params.get("dryRun")
    if value is None:
        return False
    if value != "All":
        raise LLMOSError(f"dryRun must be 'All', not {value!r}", Reason.BAD_REQUEST)
    return True


async def refuse_existing(state: AppState, info: KindInfo, obj: dict[str, Any]) -> None:
    """Fail as the real create would if an object of that name is already stored."""
    meta = obj["metadata"]
    if not meta.get("name"):
        # generateName: show a name as the real create would make one (it picks a free one)
        meta["name"] = f"{meta.get('generateName') or ''}{random_suffix()}"
        return
    try:
        await state.store.get(info.resource, meta.get("namespace") or "", meta["name"])
    except LLMOSError as exc:
        if exc.reason == Reason.NOT_FOUND:
            return
        raise
    raise LLMOSError(
        f'{info.plural} "{meta["name"]}" already exists',
        Reason.ALREADY_EXISTS,
        kind=info.kind,
        name=meta["name"],
        causes=[Cause("metadata.name", "already exists")],
    )


def check_version(info: KindInfo, current: dict[str, Any], sent: str | None) -> None:
    """Fail as the store would for a write pinned to a version that is not the current one."""
    now = str(current["metadata"].get("resourceVersion"))
    if sent and str(sent) != now:
        raise conflict(info.kind, current["metadata"].get("name", ""), str(sent), now)
