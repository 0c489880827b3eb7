"""Workload logs in cluster mode: which container is the log, and why one cannot be read."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any, Protocol

from llmos._lib.errors import LLMOSError, Reason
from llmos.runtime.kube import render


class LogReader(Protocol):
    async def lines(self, path: str, params: dict[str, str]) -> AsyncIterator[str]: ...


# The container whose log is a workload's log, by LLMOS kind.
LOGGED = {"ModelService": "engine", "Notebook": "notebook"}


def log_error(exc: LLMOSError, kind: str, name: str, replica: int, pod: str) -> LLMOSError:
    """Why the API server could not give a pod's log, as an error that names the pod."""
    if exc.reason == Reason.NOT_FOUND:
        return LLMOSError(
            f"{kind} {name!r} has no replica {replica}: pod {pod} does not exist (yet)",
            Reason.NOT_FOUND,
        )
    if exc.reason == Reason.BAD_REQUEST:  # e.g. the container is still waiting to start
        return LLMOSError(
            f"the log of pod {pod} cannot be read yet: {exc.message}",
            Reason.SERVICE_UNAVAILABLE,
            retry_after=5,
        )
    return LLMOSError(
        f"Kubernetes could not read the log of pod {pod}: {exc.message}. The API server "
        "fetches logs from the kubelet of the pod's node: check that the node is Ready and "
        "its kubelet reachable from the API server (`kubectl logs` fails the same way)",
        Reason.SERVICE_UNAVAILABLE,
        retry_after=5,
    )


async def open_log(
    client: LogReader,
    obj: dict[str, Any],
    replica: int,
    *,
    follow: bool = False,
    tail: int | None = None,
) -> AsyncIterator[str]:
    """The log of one replica's main container, from its node's kubelet via the API server.

    Opens the log before returning its lines, so a log that cannot be read is an
    :class:`LLMOSError` naming the pod and why, not a stream that breaks off.
    """
    kind, meta = obj["kind"], obj["metadata"]
    container = LOGGED.get(kind)
    if container is None:
        raise LLMOSError(
            f"logs are read for ModelServices and Notebooks, not {kind}s", Reason.BAD_REQUEST
        )
    namespace = meta["namespace"]
    pod = f"{render.child_name(kind, meta['name'])}-{replica}"
    params = {"container": container}
    if follow:
        params["follow"] = "true"
    if tail is not None:
        params["tailLines"] = str(tail)
    path = f"/api/v1/namespaces/{namespace}/pods/{pod}/log"
    try:
        return await client.lines(path, params)
    except LLMOSError as exc:
        raise log_error(exc, kind, meta["name"], replica, f"{namespace}/{pod}") from exc
