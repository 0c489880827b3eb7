"""Requests about one named, namespaced object, and where it is when it is not there.

kubectl's rule stands: without ``-n`` a name means the ``default`` namespace.
But when the object is not found there (or the user may not read it there),
the error says which namespaces the user can see hold an object of that name,
e.g. the bundled demo model, which lives in ``llmos-public``. Every command
that takes a name goes through :func:`naming` (``resources.py``,
``serving.py``, ``rayjobs.py``), so they all say it alike.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from llmos.cli.client import Client, CLIError, KindRef

# Reasons that may mean "wrong namespace": not there, or not readable there.
_MISSING = ("NotFound", "Forbidden")


def holders(client: Client, ref: KindRef, name: str) -> list[str]:
    """The namespaces the user can see that hold a ``ref`` called ``name``."""
    try:
        # The server scopes a cross-namespace list to the namespaces the user may read.
        page = client.request("GET", ref.path())
    except CLIError:
        return []
    found = {
        str(item["metadata"].get("namespace") or "")
        for item in page.get("items") or []
        if item["metadata"].get("name") == name
    }
    return sorted(found - {""})


def located(client: Client, ref: KindRef, namespace: str, name: str, error: CLIError) -> CLIError:
    """``error``, plus where the object is when another namespace holds it."""
    if not ref.namespaced or error.reason not in _MISSING:
        return error
    found = holders(client, ref, name)
    if namespace in found:  # it is there: the error is about something else
        return error
    if len(found) == 1:
        hint = f"it exists in namespace {found[0]!r}: add -n {found[0]}"
    elif found:
        listed = ", ".join(repr(ns) for ns in found)
        hint = f"it exists in namespaces {listed}: add -n with one of them"
    else:
        return error
    return CLIError(f"{error}; {hint}", error.details, error.code, error.reason)


@contextmanager
def naming(client: Client, ref: KindRef, namespace: str | None, name: str) -> Iterator[None]:
    """Around requests about ``namespace/name``: a not-found says where else it is."""
    try:
        yield
    except CLIError as exc:
        better = located(client, ref, namespace, name, exc) if namespace else exc
        if better is exc:
            raise
        raise better from exc


def fetch(client: Client, ref: KindRef, namespace: str | None, name: str) -> Any:
    """GET one object by name; see :func:`naming`."""
    with naming(client, ref, namespace, name):
        return client.request("GET", ref.path(namespace, name))
