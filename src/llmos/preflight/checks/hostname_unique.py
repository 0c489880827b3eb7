"""Hostname uniqueness check: no node of the cluster at ``--server`` has this node's name.

``--token`` is what ``llmos install`` joins with: the cluster join token
(``K10<CA hash>::<secret>``, or the bare secret). The check asks the server's
``GET /v1-cluster/cluster-info`` with it, as the join handshake does, and
reads ``nodes``. A token that is not a join token (cluster-info answers 401,
or 404 on a server that takes no joining nodes) is tried as an LLMOS API
token on ``GET /apis/node.llmos.ai/v1/nodes``, following ``continue``.

TLS is verified with ``--ca-cert``, else with the CA whose SHA-256 a ``K10``
token pins (fetched from ``/v1-public/cacerts`` and checked before anything
is sent). A bare token without ``--ca-cert`` is sent unverified, and the
result warns. ``--server https://HOST:6443`` (k3s' port, as ``llmos install``
takes it) asks LLMOS on 8443, like the installer.
"""

from __future__ import annotations

import ssl
from typing import Any
from urllib.parse import urlsplit

from llmos._lib.jointoken import JoinToken, ca_hash
from llmos.preflight.check import Check, CheckContext
from llmos.preflight.checks._hostname import hostname
from llmos.preflight.result import CheckResult, Status

__all__ = [
    "CACERTS_PATH",
    "CLUSTER_INFO_PATH",
    "NODES_PATH",
    "HostnameUniqueCheck",
    "list_node_names",
    "llmos_url",
]

CLUSTER_INFO_PATH = "/v1-cluster/cluster-info"
CACERTS_PATH = "/v1-public/cacerts"
NODES_PATH = "/apis/node.llmos.ai/v1/nodes"
K3S_PORT = 6443
LLMOS_PORT = 8443
_REQUIRED = "no other node with this name"
_MAX_PAGES = 100


class NodeListError(Exception):
    """The server could not be asked; the message says why and what to do."""


def llmos_url(server: str) -> str:
    """The LLMOS API URL of ``--server``: k3s' port 6443 (or none) means LLMOS on 8443.

    ValueError, in plain words, when ``server`` names no host.
    """
    try:
        parts = urlsplit(server)
        port = parts.port
    except ValueError as exc:
        raise ValueError(f"{server!r} is not a URL ({exc})") from exc
    host = parts.hostname or ""
    if parts.scheme not in ("https", "http") or not host:
        raise ValueError(f"{server!r} is not a URL of a server: give https://HOST:8443")
    if ":" in host:  # IPv6
        host = f"[{host}]"
    port = LLMOS_PORT if port in (None, K3S_PORT) else port
    return f"{parts.scheme}://{host}:{port}"


def _pinned_context(url: str, pinned: str, timeout: float) -> ssl.SSLContext:
    """An SSL context trusting the CA ``url`` serves, if its SHA-256 is ``pinned``."""
    import httpx

    try:
        # Not trusted yet: its hash is checked against the token right below.
        response = httpx.get(url + CACERTS_PATH, verify=False, timeout=timeout)
        response.raise_for_status()
    except httpx.HTTPError as exc:
        raise NodeListError(
            f"cannot fetch the server's CA from {url}{CACERTS_PATH}: {exc}"
        ) from exc
    served = ca_hash(response.content)
    if served != pinned:
        raise NodeListError(
            f"the CA that {url} serves has SHA-256 {served}, but the join token pins {pinned}: "
            "another server, a token of another cluster, or someone in between"
        )
    try:
        return ssl.create_default_context(cadata=response.content.decode())
    except (ssl.SSLError, ValueError) as exc:
        raise NodeListError(f"{url}{CACERTS_PATH} is not a PEM CA bundle: {exc}") from exc


def _cluster_info_names(client: Any, url: str, secret: str) -> list[str] | None:
    """Node names from cluster-info; None when the token is not this cluster's join token."""
    response = client.get(url + CLUSTER_INFO_PATH, headers={"Authorization": f"Bearer {secret}"})
    if response.status_code in (401, 404):
        return None
    response.raise_for_status()
    body = response.json()
    nodes = body.get("nodes") if isinstance(body, dict) else None
    if not isinstance(nodes, list):
        raise NodeListError(f"{url}{CLUSTER_INFO_PATH} answered without a list of nodes")
    return [str(name) for name in nodes]


def _resource_names(client: Any, url: str, token: str) -> list[str]:
    """Node names from the Nodes API, page by page, with an LLMOS API token."""
    names: list[str] = []
    params: dict[str, str] = {"limit": "500"}
    for _ in range(_MAX_PAGES):
        response = client.get(
            url + NODES_PATH, params=params, headers={"Authorization": f"Bearer {token}"}
        )
        if response.status_code in (401, 403):
            raise NodeListError(
                f"the server refused the token (HTTP {response.status_code}): give the cluster's "
                "join token (/etc/llmos/join-token on the first server) with --token"
            )
        response.raise_for_status()
        body: dict[str, Any] = response.json()
        names.extend(
            str(item.get("metadata", {}).get("name", "")) for item in body.get("items", [])
        )
        token_next = (body.get("metadata") or {}).get("continue")
        if not token_next:
            break
        params["continue"] = str(token_next)
    return names


def list_node_names(
    url: str, token: JoinToken, verify: ssl.SSLContext | bool, timeout: float = 10.0
) -> list[str]:
    """Names of the nodes the server at ``url`` (its LLMOS API) knows."""
    import httpx  # imported here: it costs ~0.2 s, and most runs have no --server

    try:
        with httpx.Client(verify=verify, timeout=timeout) as client:
            names = _cluster_info_names(client, url, token.secret)
            if names is None:
                names = _resource_names(client, url, str(token))
    except httpx.HTTPStatusError as exc:
        raise NodeListError(f"the server answered HTTP {exc.response.status_code}") from exc
    except httpx.HTTPError as exc:
        raise NodeListError(f"cannot reach {url}: {exc}") from exc
    except ValueError as exc:
        raise NodeListError(f"{url} did not answer with a node list: {exc}") from exc
    return names


class HostnameUniqueCheck(Check):
    id = "hostname-unique"
    title = "Hostname unique in cluster"
    cluster_only = True

    def run(self, ctx: CheckContext) -> CheckResult:
        options = ctx.options
        if not options.server or not options.token:
            return self.skipped("pass --server and --token to compare with the cluster's nodes")
        name = hostname(ctx.host)
        failed = {"hostname": name, "server": options.server}
        try:
            url = llmos_url(options.server)
            token = JoinToken.parse(options.token)
            verify: ssl.SSLContext | bool = False
            if options.ca_cert is not None:
                verify = ssl.create_default_context(cafile=str(options.ca_cert))
            elif token.ca_hash is not None:
                verify = _pinned_context(url, token.ca_hash, 10.0)
            names = list_node_names(url, token, verify)
        except (NodeListError, ValueError, ssl.SSLError) as exc:
            return self.result(
                Status.FAIL,
                f"could not list nodes: {exc}",
                _REQUIRED,
                "Check --server (the first server's URL), --token (its join token, "
                "/etc/llmos/join-token) and --ca-cert, and that port 8443 is reachable.",
                data=failed,
            )
        data = {"hostname": name, "server": options.server, "nodes": names}
        if name in names:
            return self.result(
                Status.FAIL,
                f"{name} is already a node of the cluster",
                _REQUIRED,
                "Give this node another name (hostnamectl set-hostname NAME) before joining.",
                data=data,
            )
        measured = f"{name} not among {len(names)} node(s)"
        if not url.startswith("https://"):
            return self.result(
                Status.WARN,
                measured,
                _REQUIRED,
                "Use the server's https:// URL; the token was sent unencrypted.",
                reason="the server URL is not HTTPS",
                data=data,
            )
        if verify is False:
            return self.result(
                Status.WARN,
                measured,
                _REQUIRED,
                "Pass --ca-cert with the server's CA certificate, or the full join token "
                "(K10<hash>::<secret>), so the server's TLS identity is verified.",
                reason="TLS certificate of the server was not verified",
                data=data,
            )
        return self.result(Status.PASS, measured, _REQUIRED, data=data)
