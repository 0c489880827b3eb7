"""The tokens of cluster-mode notebooks and Ray clusters, for the workload proxy.

The Kubernetes runtime gives each Notebook and MLCluster a token of its own in a
Secret it owns (``nb-NAME-token``, ``ray-NAME-token``); its containers were
started with it, and the proxy presents it after LLMOS's own authentication.
A Secret is made once per object, so each is read once and kept by uid.
"""

from __future__ import annotations

from typing import Any

from llmos._lib.errors import LLMOSError, Reason
from llmos.runtime.kube.render import secret_name
from llmos.runtime.kube.runtime import KubeRuntime


class WorkloadTokens:
    def __init__(self, runtime: KubeRuntime) -> None:
        self.runtime = runtime
        self._by_uid: dict[str, str] = {}

    async def get(self, obj: dict[str, Any]) -> str:
        meta = obj["metadata"]
        token = self._by_uid.get(meta["uid"])
        if token is None:
            token = await self.runtime.secret_token(obj)
            if token is None:
                raise LLMOSError(
                    f"{obj['kind']} {meta['name']!r} is not ready: its Secret "
                    f"{meta['namespace']}/{secret_name(obj)} has no token yet",
                    Reason.SERVICE_UNAVAILABLE,
                    retry_after=5,
                )
            self._by_uid[meta["uid"]] = token
        return token
