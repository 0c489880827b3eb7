"""Hostname uniqueness check: no node of the cluster at ``--server`` has this node's name.

Asks the server for its nodes (``GET /apis/node.llmos.ai/v1/nodes`` with the
bearer token). TLS is verified with ``--ca-cert``; without it the request
still runs, unverified, and the result warns.
"""

from __future__ import annotations

import ssl
from typing import Any

from llmos.preflight.check import Check, CheckContext
from llmos.preflight.checks._hostname import hostname
from llmos.preflight.result import CheckResult, Status

__all__ = ["NODES_PATH", "HostnameUniqueCheck", "list_node_names"]

NODES_PATH = "/apis/node.llmos.ai/v1/nodes"
_REQUIRED = "no other node with this name"
_MAX_PAGES = 100


class NodeListError(Exception):
    """The server could not be asked; the message says why and what to do."""


def list_node_names(
    server: str, token: str, verify: ssl.SSLContext | bool, timeout: float = 10.0
) -> list[str]:
    """Names of the nodes the server knows, following ``continue`` tokens."""
    import httpx  # imported here: it costs ~0.2 s, and most runs have no --server

    names: list[str] = []
    url = server.rstrip("/") + NODES_PATH
    params: dict[str, str] = {"limit": "500"}
    try:
        with httpx.Client(verify=verify, timeout=timeout) as client:
            for _ in range(_MAX_PAGES):
                response = client.get(
                    url, params=params, headers={"Authorization": f"Bearer {token}"}
                )
                if response.status_code in (401, 403):
                    raise NodeListError(
                        f"the server refused the token (HTTP {response.status_code}); check --token"
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
    except httpx.HTTPStatusError as exc:
        raise NodeListError(f"the server answered HTTP {exc.response.status_code}") from exc
    except httpx.HTTPError as exc:
        raise NodeListError(f"cannot reach {server}: {exc}") from exc
    except ValueError as exc:
        raise NodeListError(f"{server} did not answer with a node list: {exc}") from exc
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
        verify: ssl.SSLContext | bool = False
        if options.ca_cert is not None:
            verify = ssl.create_default_context(cafile=str(options.ca_cert))
        try:
            names = list_node_names(options.server, options.token, verify)
        except NodeListError as exc:
            return self.result(
                Status.FAIL,
                f"could not list nodes: {exc}",
                _REQUIRED,
                "Check --server, --token and --ca-cert, and that the server is reachable.",
                data={"hostname": name, "server": options.server},
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
        if not options.server.lower().startswith("https://"):
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
                "Pass --ca-cert with the server's CA certificate so its TLS identity is verified.",
                reason="TLS certificate of the server was not verified",
                data=data,
            )
        return self.result(Status.PASS, measured, _REQUIRED, data=data)
