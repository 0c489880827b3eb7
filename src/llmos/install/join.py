"""The join handshake: what a node asks the server before it joins, and the checks it makes.

``llmos install --server https://HOST:6443 --token K10<hash>::<secret>`` calls
:func:`handshake` before it changes anything:

1. It fetches the server's CA bundle from ``/v1-public/cacerts`` without
   trusting it, and trusts it only if its SHA-256 is the hash in the token
   (``--ca-cert`` may name the CA instead; a bare token with neither is refused,
   since it would send the secret to whoever answers).
2. Over TLS verified with that CA, it calls ``/v1-cluster/cluster-info`` with
   the token's secret as the bearer token (``api/cluster_info.py``).
3. :func:`check_join` compares the answer with this node: the same LLMOS minor
   version, a node name nobody has, and a Kubernetes version to match (a node
   that sets none installs the server's k3s release).
4. :func:`k3s_token` makes what k3s itself joins with: k3s' secure token
   ``K10<hash>::server:<secret>``, with the hash of the Kubernetes server CA
   that cluster-info named. k3s checks the CA it fetches from 6443 against it
   before it sends the secret, so k3s' own join is pinned as well. A server
   that cannot name that CA is refused, unless the user accepts an unpinned
   k3s join (``--allow-unpinned-k3s-join``).

k3s' own port is 6443 and LLMOS's 8443 on the same host: ``--server`` with port
6443 asks 8443, and any other port is taken as LLMOS's own (k3s still joins 6443).
"""

from __future__ import annotations

import re
import ssl
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx

from llmos import __version__
from llmos._lib.errors import Reason
from llmos._lib.jointoken import JoinToken, ca_hash
from llmos.install.config import InstallConfig
from llmos.install.errors import JoinError
from llmos.install.k3s import secure_token

__all__ = ["ClusterInfo", "check_join", "endpoints", "handshake", "k3s_token"]

K3S_PORT = 6443
LLMOS_PORT = 8443
_K3S_RELEASE = re.compile(r"^v\d+\.\d+\.\d+\+k3s\d+$")
_SHA256 = re.compile(r"^[0-9a-f]{64}$")
UNPINNED_FLAG = "--allow-unpinned-k3s-join"


@dataclass(frozen=True)
class ClusterInfo:
    llmos_version: str
    kubernetes_version: str | None
    ca_fingerprint: str
    nodes: tuple[str, ...]
    kubernetes_ca_hash: str | None = None
    """SHA-256 of the Kubernetes server CA (what k3s serves at /cacerts); None if unknown."""


def endpoints(server: str) -> tuple[str, str]:
    """``(k3s URL, LLMOS URL)`` of a ``--server`` URL; ValueError, in plain words, if it has none."""
    try:
        parts = urlsplit(server)
        port = parts.port
    except ValueError as exc:
        raise ValueError(
            f"{server!r} is not a server URL ({exc}): give https://HOST:6443 of a server"
        ) from exc
    host = parts.hostname or ""
    if not host or port == 0:
        raise ValueError(f"{server!r} names no host or port: give https://HOST:6443 of a server")
    if ":" in host:  # IPv6
        host = f"[{host}]"
    port = port or K3S_PORT
    llmos_port = LLMOS_PORT if port == K3S_PORT else port
    return f"https://{host}:{K3S_PORT}", f"https://{host}:{llmos_port}"


def handshake(
    llmos_url: str, token: str, *, ca_cert: Path | None = None, timeout: float = 15.0
) -> ClusterInfo:
    """Ask the server at ``llmos_url`` for its cluster info, trusting only the pinned CA."""
    join = JoinToken.parse(token)
    if ca_cert is not None:
        try:
            pem = ca_cert.read_bytes()
        except OSError as exc:
            raise JoinError(f"cannot read --ca-cert {ca_cert}: {exc.strerror}") from exc
    elif join.ca_hash is not None:
        pem = _pinned_ca(llmos_url, join.ca_hash, timeout)
    else:
        raise JoinError(
            "the token has no CA hash, so the server cannot be verified before the token is "
            "sent to it: use the join token the first server printed (K10<hash>::<secret>, "
            "also in its /etc/llmos/join-token), or pass --ca-cert with the server's CA",
            Reason.BAD_REQUEST,
        )
    try:
        context = ssl.create_default_context(cadata=pem.decode())
    except (ssl.SSLError, ValueError) as exc:
        raise JoinError(f"the server's CA is not a PEM certificate bundle: {exc}") from exc
    body = _get_info(llmos_url, join.secret, context, timeout)
    try:
        info = ClusterInfo(
            llmos_version=str(body["llmosVersion"]),
            kubernetes_version=body.get("kubernetesVersion"),
            ca_fingerprint=str(body["caFingerprint"]),
            nodes=tuple(str(name) for name in body.get("nodes") or ()),
            kubernetes_ca_hash=body.get("kubernetesCAFingerprint") or None,
        )
    except (KeyError, TypeError) as exc:
        raise JoinError(f"{llmos_url} answered cluster-info without {exc}: is it LLMOS?") from exc
    kube_hash = info.kubernetes_ca_hash
    if kube_hash is not None and not (isinstance(kube_hash, str) and _SHA256.match(kube_hash)):
        raise JoinError(
            f"{llmos_url} answered cluster-info with a kubernetesCAFingerprint that is not a "
            f"SHA-256 in hex ({str(kube_hash)[:80]!r}): is it LLMOS?"
        )
    if info.ca_fingerprint != ca_hash(pem):
        raise JoinError(
            f"{llmos_url} says its CA is {info.ca_fingerprint}, but it serves one with hash "
            f"{ca_hash(pem)}: its replicas do not share one certificate (the llmos-tls Secret)"
        )
    return info


def k3s_token(info: ClusterInfo, secret: str, *, allow_unpinned: bool = False) -> str:
    """What k3s joins with: k3s' secure token, pinned to the server CA that ``info`` names.

    ``secret`` may be a stand-in (a dry run). Without a hash, the bare secret if
    ``allow_unpinned``; otherwise a JoinError, since k3s would then trust
    whatever answers on 6443 and send it the secret.
    """
    if info.kubernetes_ca_hash:
        return secure_token(info.kubernetes_ca_hash, secret)
    if allow_unpinned:
        return secret
    raise JoinError(
        "the server did not say which CA its Kubernetes API (k3s, port 6443) uses, so k3s' own "
        "join could not check that server before sending it the cluster secret: anyone in "
        "between on 6443 would get it. Run LLMOS on that server in the cluster (as `llmos "
        "install` deploys it) or with a kubeconfig that names its certificate authority, and "
        f"join again; or accept an unpinned k3s join with {UNPINNED_FLAG}.",
        Reason.CONFLICT,
    )


def _pinned_ca(llmos_url: str, expected: str, timeout: float) -> bytes:
    try:
        # Not trusted yet: it is checked against the token's hash right below.
        response = httpx.get(f"{llmos_url}/v1-public/cacerts", verify=False, timeout=timeout)
        response.raise_for_status()
    except httpx.HTTPError as exc:
        raise _unreachable(llmos_url, exc) from exc
    served = ca_hash(response.content)
    if served != expected:
        raise JoinError(
            f"the CA that {llmos_url} serves has SHA-256 {served}, but the join token pins "
            f"{expected}: this is another server, the token is from another cluster, or someone "
            "is in between. Check --server and copy the token again from the first server "
            "(/etc/llmos/join-token).",
            Reason.FORBIDDEN,
        )
    return response.content


def _get_info(
    llmos_url: str, secret: str, context: ssl.SSLContext, timeout: float
) -> dict[str, Any]:
    url = f"{llmos_url}/v1-cluster/cluster-info"
    try:
        response = httpx.get(
            url, headers={"Authorization": f"Bearer {secret}"}, verify=context, timeout=timeout
        )
    except httpx.HTTPError as exc:
        raise _unreachable(llmos_url, exc) from exc
    if response.status_code == 401:
        raise JoinError(
            f"{llmos_url} refused the token: check --token (the join token of this cluster)",
            Reason.UNAUTHORIZED,
        )
    if response.status_code == 404:
        raise JoinError(
            f"{llmos_url} takes no joining nodes (no /v1-cluster/cluster-info, or no cluster "
            "token): join a server set up with `llmos install --cluster-init`",
            Reason.NOT_FOUND,
        )
    if not response.is_success:
        raise JoinError(f"{url} answered HTTP {response.status_code}: {response.text[:300]}")
    try:
        data = response.json()
    except ValueError as exc:
        raise JoinError(f"{url} did not answer with JSON: is it LLMOS?") from exc
    if not isinstance(data, dict):
        raise JoinError(f"{url} did not answer with a cluster-info object: is it LLMOS?")
    return data


def _unreachable(llmos_url: str, exc: httpx.HTTPError) -> JoinError:
    text = str(exc)
    if "CERTIFICATE_VERIFY_FAILED" in text or "certificate verify failed" in text:
        return JoinError(
            f"{llmos_url}'s certificate does not match its address ({text}): use a name or IP "
            "in its certificate, or add this one to tlsSans on the first server",
            Reason.FORBIDDEN,
        )
    return JoinError(
        f"cannot reach the LLMOS server at {llmos_url} ({exc.__class__.__name__}: {text}): "
        "check --server and that port 8443 is open from this node",
        Reason.SERVICE_UNAVAILABLE,
    )


def _minor(version: str) -> tuple[str, ...]:
    return tuple(version.lstrip("v").split("+")[0].split(".")[:2])


def _core(version: str) -> str:
    return version.lstrip("v").split("+")[0]


def check_join(
    info: ClusterInfo, config: InstallConfig, node_name: str, *, version_given: bool
) -> str:
    """Refuse a join that cannot work; return the k3s release this node should install."""
    if _minor(info.llmos_version) != _minor(__version__):
        raise JoinError(
            f"the server runs LLMOS {info.llmos_version} and this node has {__version__}: "
            f"install LLMOS {'.'.join(_minor(info.llmos_version))}.x here, then join",
            Reason.CONFLICT,
        )
    if node_name in info.nodes:
        raise JoinError(
            f"a node named {node_name!r} is already in the cluster: give this one another "
            "name (--node-name or nodeName), or remove the old one first "
            f"(kubectl delete node {node_name})",
            Reason.CONFLICT,
        )
    server_version = info.kubernetes_version
    if not server_version:
        raise JoinError(
            "the server runs LLMOS in embedded mode (no Kubernetes): nodes join a cluster "
            "whose first server was set up with `llmos install --cluster-init`",
            Reason.CONFLICT,
        )
    wanted = config.kubernetes_version
    if version_given or not _K3S_RELEASE.match(server_version):
        if _core(wanted) != _core(server_version):
            raise JoinError(
                f"the cluster runs Kubernetes {server_version} but kubernetesVersion is {wanted}: "
                "install the cluster's release (drop --kubernetes-version to take it)",
                Reason.CONFLICT,
            )
        return wanted
    return server_version
