"""Workload logs in cluster mode: which container is the log, and why one cannot be read."""

from __future__ import annotations

from llmos._lib.errors import LLMOSError, Reason

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
