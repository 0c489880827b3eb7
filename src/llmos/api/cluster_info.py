"""``GET /v1-cluster/cluster-info``: what a joining node asks a server before it joins.

Authorized by the cluster join token (``Authorization: Bearer <token>``, bare
or ``K10…::`` form), not by an LLMOS user: the node has no account yet. The
server knows the token from ``--cluster-token-file`` (the installer's
Deployment mounts it from the Secret ``llmos-cluster-token``); without one it
answers 404, and with one it cannot use (unreadable, empty, garbage) 503. The
answer carries the versions to match, the SHA-256 of the CA bundle that
``/v1-public/cacerts`` serves (the hash a ``K10`` token pins), the SHA-256 of
the Kubernetes API server's CA (k3s' server CA, which k3s serves at ``/cacerts``
on 6443: the hash of the k3s secure token the newcomer gives k3s, so k3s' own
join is pinned too), and the names of the cluster's nodes, so the newcomer can
check that its own name is free. ``install.join`` is the client.
"""

from __future__ import annotations

import contextlib
import logging
from pathlib import Path

from fastapi import APIRouter, Request
from pydantic import BaseModel

from llmos import __version__
from llmos._lib.errors import LLMOSError, Reason
from llmos._lib.jointoken import JoinToken, ca_hash
from llmos.api.security import bearer_token
from llmos.api.state import app_state
from llmos.store.base import ResourceStore
from llmos.store.kube.client import SERVICE_ACCOUNT
from llmos.store.kube.store import KubeStore

log = logging.getLogger(__name__)
router = APIRouter(prefix="/v1-cluster", tags=["cluster"])
LLMOS_NODES = "nodes.node.llmos.ai"


class ClusterInfo(BaseModel):
    apiVersion: str = "management.llmos.ai/v1"
    kind: str = "ClusterInfo"
    llmosVersion: str
    kubernetesVersion: str | None
    """The cluster's Kubernetes (k3s) version; None for an embedded-mode server."""
    caFingerprint: str
    """SHA-256 (hex) of the CA bundle served at /v1-public/cacerts."""
    kubernetesCAFingerprint: str | None = None
    """SHA-256 (hex) of the Kubernetes API server's CA (k3s' /cacerts); None if unknown."""
    nodes: list[str]


class ClusterInfoError(LLMOSError):
    """A joining node's request was refused."""


@router.get("/cluster-info", response_model=ClusterInfo)
async def cluster_info(request: Request) -> ClusterInfo:
    state = app_state(request)
    path = state.config.cluster_token_file
    if path is None:
        raise ClusterInfoError(
            "this server has no cluster join token, so nodes cannot join through it: "
            "start it with --cluster-token-file (llmos install does)",
            Reason.NOT_FOUND,
        )
    offered = bearer_token(request)
    expected = _expected_token(path)
    if not offered or not expected.matches(offered):
        raise ClusterInfoError(
            "cluster-info needs the cluster join token as 'Authorization: Bearer <token>'; "
            "the one given is missing or wrong",
            Reason.UNAUTHORIZED,
        )
    version, nodes = await _cluster_facts(state.store)
    return ClusterInfo(
        llmosVersion=__version__,
        kubernetesVersion=version,
        caFingerprint=ca_hash(state.ca_cert.read_bytes()),
        kubernetesCAFingerprint=_kubernetes_ca_hash(state.store),
        nodes=nodes,
    )


def _expected_token(path: Path) -> JoinToken:
    """The token in ``path``; a 503 naming the file if it holds none (the server is misconfigured)."""
    try:
        token = JoinToken.parse(path.read_text())
    except OSError as exc:
        problem = f"it cannot be read ({exc.strerror})"
    except (ValueError, UnicodeDecodeError):
        problem = "it holds no join token (K10<64 hex digits>::<secret>, or the bare secret)"
    else:
        if len(token.secret) >= 16:
            return token
        problem = "its secret is empty or shorter than 16 characters"
    # Not the content: it may be most of the secret.
    log.error("cluster-info refused: the cluster token file %s is unusable: %s", path, problem)
    raise ClusterInfoError(
        f"this server is misconfigured: its cluster token file {path} is unusable ({problem}), "
        "so no node can join through it until it holds the cluster's join secret (the Secret "
        "llmos-cluster-token, mounted as --cluster-token-file)",
        Reason.SERVICE_UNAVAILABLE,
    )


def _kubernetes_ca_hash(store: ResourceStore) -> str | None:
    """SHA-256 of the CA that signs the Kubernetes API server's certificate, if known.

    In a pod, the service account's ``ca.crt``: in k3s that is the server CA
    (the controller manager's root-ca-file), byte for byte what k3s serves at
    ``/cacerts``. Outside one, the CA of the server's own kube connection (the
    kubeconfig's certificate authority, which k3s writes from the same file).
    None in embedded mode, or when the connection trusts the system's store.
    """
    if not isinstance(store, KubeStore):
        return None
    try:
        pem: bytes | None = (SERVICE_ACCOUNT / "ca.crt").read_bytes()
    except OSError:
        pem = store.client.connection.ca_pem
    return ca_hash(pem) if pem else None


async def _cluster_facts(store: ResourceStore) -> tuple[str | None, list[str]]:
    """The Kubernetes version and node names on the kube store; LLMOS's Nodes otherwise."""
    if isinstance(store, KubeStore):
        version = await store.client.request("GET", "/version")
        nodes = await store.client.request("GET", "/api/v1/nodes")
        names = [item["metadata"]["name"] for item in nodes.get("items", [])]
        return str(version.get("gitVersion") or "") or None, sorted(names)
    names = []
    with contextlib.suppress(LLMOSError):
        page = await store.list(LLMOS_NODES, "")
        names = [obj["metadata"]["name"] for obj in page.items]
    return None, sorted(names)
