"""HTTP to the Kubernetes API for the kube store: where it is, how to ask, what errors mean.

``KubeConnection`` says where the API server is and which credentials to send:
from a kubeconfig file (``/etc/llmos/kubeconfig.yaml``, written by the
installer) or from the pod's service account. ``KubeClient`` sends requests over
one pooled ``httpx.AsyncClient`` and turns a Kubernetes ``Status`` into the
store's own errors, so nothing above the store sees an HTTP status.
"""

from __future__ import annotations

import asyncio
import base64
import ssl
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import orjson
import yaml

from llmos._lib.errors import Cause, Reason
from llmos.store import errors
from llmos.store.errors import StoreError

SERVICE_ACCOUNT = Path("/var/run/secrets/kubernetes.io/serviceaccount")
_THROTTLE_RETRIES = 10


@dataclass(frozen=True)
class KubeConnection:
    """The API server's URL, a bearer token, and the CA that signed its certificate."""

    url: str
    token: str
    ca_pem: bytes | None = None  # None: the system's trust store

    @classmethod
    def from_kubeconfig(cls, path: Path) -> KubeConnection:
        """Read the current context of a kubeconfig that authenticates with a token."""
        config = yaml.safe_load(path.read_text())
        contexts = {c["name"]: c["context"] for c in config.get("contexts") or []}
        context: dict[str, Any] = contexts.get(config.get("current-context") or "") or next(
            iter(contexts.values()), {}
        )
        clusters = {c["name"]: c["cluster"] for c in config.get("clusters") or []}
        users = {u["name"]: u["user"] for u in config.get("users") or []}
        cluster = clusters.get(context.get("cluster", ""))
        user = users.get(context.get("user", ""), {})
        if cluster is None or "token" not in user:
            raise StoreError(
                f"kubeconfig {path} has no cluster with a token user in its current context: "
                "write one with a server, a certificate authority and a bearer token",
                Reason.BAD_REQUEST,
            )
        ca: bytes | None = None
        if cluster.get("certificate-authority-data"):
            ca = base64.b64decode(cluster["certificate-authority-data"])
        elif cluster.get("certificate-authority"):
            ca = (path.parent / cluster["certificate-authority"]).read_bytes()
        return cls(url=cluster["server"], token=user["token"], ca_pem=ca)

    @classmethod
    def in_cluster(cls, root: Path = SERVICE_ACCOUNT) -> KubeConnection:
        """The API server as seen from a pod, with the pod's service account token."""
        return cls(
            url="https://kubernetes.default.svc",
            token=(root / "token").read_text().strip(),
            ca_pem=(root / "ca.crt").read_bytes(),
        )

    def ssl_context(self) -> ssl.SSLContext:
        if self.ca_pem is None:
            return ssl.create_default_context()
        return ssl.create_default_context(cadata=self.ca_pem.decode())


class KubeClient:
    """Requests to one API server; errors come back as ``StoreError``."""

    def __init__(self, connection: KubeConnection, *, timeout: float = 30.0) -> None:
        self.connection = connection
        self.http = httpx.AsyncClient(
            base_url=connection.url,
            headers={
                "Authorization": f"Bearer {connection.token}",
                "Accept": "application/json",
            },
            verify=connection.ssl_context(),
            timeout=timeout,
        )

    async def request(
        self,
        method: str,
        path: str,
        *,
        body: Any = None,
        params: dict[str, str] | None = None,
        kind: str = "",
        name: str = "",
        namespace: str = "",
        content_type: str = "application/json",
    ) -> dict[str, Any]:
        """Send one request and return the decoded JSON body of a 2xx answer.

        ``content_type`` names a patch's kind, e.g. ``application/apply-patch+yaml``
        for server-side apply (JSON is YAML).
        """
        content = None if body is None else orjson.dumps(body)
        headers = {"Content-Type": content_type} if content is not None else None
        for attempt in range(_THROTTLE_RETRIES + 1):
            try:
                response = await self.http.request(
                    method, path, content=content, params=params, headers=headers
                )
            except httpx.HTTPError as exc:
                raise unreachable(self.connection.url, exc) from exc
            if response.status_code != 429 or attempt == _THROTTLE_RETRIES:
                break
            # Throttled, or a new CRD's storage still initializing: wait as told, like client-go.
            await asyncio.sleep(_retry_after(response))
        if response.is_success:
            result: dict[str, Any] = orjson.loads(response.content)
            return result
        raise translate(response.status_code, _status_of(response), kind, name, namespace)

    async def close(self) -> None:
        await self.http.aclose()


def unreachable(url: str, exc: Exception) -> StoreError:
    return StoreError(
        f"the Kubernetes API at {url} did not answer ({exc.__class__.__name__}: {exc}); "
        "check that the cluster is up and reachable from this host",
        Reason.SERVICE_UNAVAILABLE,
        retry_after=1.0,
    )


def _retry_after(response: httpx.Response) -> float:
    try:
        return min(max(float(response.headers.get("Retry-After", "1")), 0.05), 5.0)
    except ValueError:
        return 1.0


def _status_of(response: httpx.Response) -> dict[str, Any]:
    try:
        status = orjson.loads(response.content)
    except orjson.JSONDecodeError:
        return {"message": response.text[:500]}
    return status if isinstance(status, dict) else {}


def translate(
    code: int, status: dict[str, Any], kind: str, name: str, namespace: str
) -> StoreError:
    """A Kubernetes ``Status`` (an error answer or a watch ERROR) as a store error."""
    reason = status.get("reason") or ""
    message = status.get("message") or f"HTTP {code}"
    if code == 404:
        return errors.not_found(kind or "object", name, namespace or None)
    if code == 409 and reason == "AlreadyExists":
        return errors.already_exists(kind or "object", name, namespace or None)
    if code == 409:
        return StoreError(
            f"{kind} {name!r} was modified since you read it: get the object again, re-apply "
            "your change and retry",
            Reason.CONFLICT,
            kind=kind,
            name=name,
        )
    if code == 410:
        return StoreError(
            f"{message}. List again and watch from the list's resourceVersion", Reason.GONE
        )
    if code == 422:
        causes = [
            Cause(c.get("field", ""), c.get("message", ""), c.get("reason", "FieldValueInvalid"))
            for c in (status.get("details") or {}).get("causes") or []
        ]
        return StoreError(message, Reason.INVALID, causes=causes, kind=kind, name=name)
    if code == 400:
        return StoreError(message, Reason.BAD_REQUEST, kind=kind, name=name)
    if code in (401, 403):
        return StoreError(
            f"the Kubernetes API refused LLMOS's own credentials ({message}); check the "
            "kubeconfig or the service account's RBAC",
            Reason.INTERNAL,
        )
    if code == 429 or code >= 500:
        return StoreError(
            f"the Kubernetes API is busy or failing ({message}); retry shortly",
            Reason.SERVICE_UNAVAILABLE,
            retry_after=1.0,
        )
    return StoreError(message, Reason.INTERNAL, kind=kind, name=name)
