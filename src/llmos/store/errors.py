"""Errors every ResourceStore backend raises, whatever holds the data."""

from __future__ import annotations

from llmos._lib.errors import Cause, LLMOSError, Reason


class StoreError(LLMOSError):
    """Root of the store's errors."""


def not_found(kind: str, name: str, namespace: str | None = None) -> StoreError:
    where = f" in namespace {namespace!r}" if namespace else ""
    return StoreError(f"{kind} {name!r} not found{where}", Reason.NOT_FOUND, kind=kind, name=name)


def already_exists(kind: str, name: str, namespace: str | None = None) -> StoreError:
    where = f" in namespace {namespace!r}" if namespace else ""
    return StoreError(
        f"{kind} {name!r} already exists{where}: choose another name, or update the "
        "existing object",
        Reason.ALREADY_EXISTS,
        kind=kind,
        name=name,
    )


def conflict(kind: str, name: str, sent: str, current: str) -> StoreError:
    return StoreError(
        f"{kind} {name!r} was modified since you read it (you sent resourceVersion "
        f"{sent}, the current one is {current}): get the object again, re-apply your "
        "change and retry",
        Reason.CONFLICT,
        kind=kind,
        name=name,
    )


def too_new(requested: int, latest: int) -> StoreError:
    """A watch from a version this store has not reached: one from another server, or from
    before its data was reset. Waiting would show nothing, so it is refused at once."""
    return StoreError(
        f"resourceVersion {requested} is newer than this server's latest, {latest} (is it "
        "from another server, or from before the data was reset?). List again and watch "
        "from the list's resourceVersion",
        Reason.BAD_REQUEST,
        causes=[Cause("resourceVersion", "too large", "ResourceVersionTooLarge")],
    )


def gone(requested: int, oldest: int) -> StoreError:
    return StoreError(
        f"resourceVersion {requested} is too old: the oldest one still kept is {oldest}. "
        "List again and watch from the list's resourceVersion",
        Reason.GONE,
    )
