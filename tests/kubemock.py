"""A Kubernetes runtime on a stand-in API server, for what kwok's nodes cannot show.

kwok's nodes have no kubelet, so the API server cannot read a pod's log
from them. These tests run the runtime's side of that
against an ``httpx.MockTransport`` in place of the API server, through the
same client code the server uses (``_RuntimeAPI`` over the kube store's
``KubeClient``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
import orjson

from llmos.api.workloads import _RuntimeAPI
from llmos.runtime.kube.render import KubeSettings
from llmos.runtime.kube.runtime import KubeRuntime
from llmos.store.kube.client import KubeClient, KubeConnection


def workload(kind: str, name: str = "m", **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "ml.llmos.ai/v1",
        "kind": kind,
        "metadata": {"name": name, "namespace": "team", "uid": "u1"},
        "spec": spec,
    }


def runtime_on(handler: Callable[[httpx.Request], Any]) -> tuple[KubeRuntime, KubeClient]:
    """A KubeRuntime whose API server is ``handler``; close the client after."""
    client = KubeClient(KubeConnection("https://kube.test", "token"))
    client.http = httpx.AsyncClient(
        base_url="https://kube.test", transport=httpx.MockTransport(handler)
    )

    def no_settings() -> KubeSettings:
        raise AssertionError("reading needs no settings")

    return KubeRuntime(_RuntimeAPI(client), no_settings), client


def kube_status(code: int, message: str) -> httpx.Response:
    """An API server's refusal: a ``Status`` object."""
    body = {"kind": "Status", "status": "Failure", "message": message, "code": code}
    return httpx.Response(code, content=orjson.dumps(body))
