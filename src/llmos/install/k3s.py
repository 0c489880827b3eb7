"""The files that set up k3s on one node: its config, the registry mirror, its systemd unit.

``install.plan`` writes what these functions return. k3s reads
``/etc/rancher/k3s/config.yaml`` (flag names as keys) and ``registries.yaml``;
the unit follows the one k3s' own installer writes, under the same name
(``k3s`` on servers, ``k3s-agent`` on agents) so k3s' own tools still work.

The first server gives k3s the bare shared secret. A joining node gives it
k3s' secure token, ``K10<sha256 of the server CA>::server:<secret>``
(:func:`secure_token`; https://docs.k3s.io/cli/token): k3s then fetches
``/cacerts`` on 6443, checks its hash and the server's certificate against it,
and only then sends the secret. The hash comes from the join handshake
(``install.join``), over LLMOS's own pinned channel on 8443.
"""

from __future__ import annotations

from typing import Any

from llmos._lib.jointoken import PREFIX
from llmos.install.config import InstallConfig

__all__ = [
    "CONFIG_PATH",
    "IMAGES_DIR",
    "K3S_BIN",
    "KUBECONFIG",
    "MANIFESTS_DIR",
    "REGISTRIES_PATH",
    "k3s_config",
    "registries",
    "secure_token",
    "unit",
    "unit_name",
]

K3S_BIN = "/usr/local/bin/k3s"
CONFIG_PATH = "/etc/rancher/k3s/config.yaml"
REGISTRIES_PATH = "/etc/rancher/k3s/registries.yaml"
KUBECONFIG = "/etc/llmos/kubeconfig.yaml"
MANIFESTS_DIR = "/var/lib/rancher/k3s/server/manifests"  # k3s applies what is put here
IMAGES_DIR = "/var/lib/rancher/k3s/agent/images"  # air-gap image tarballs


def secure_token(server_ca_hash: str, secret: str) -> str:
    """k3s' secure ("full") token: the server CA's SHA-256, then the server user's secret."""
    return f"{PREFIX}{server_ca_hash}::server:{secret}"


def k3s_config(config: InstallConfig, token: str) -> dict[str, Any]:
    """``/etc/rancher/k3s/config.yaml``: the k3s flags for this node.

    ``token`` is what k3s gets: the bare secret on the first server, the
    :func:`secure_token` on a joining node (a stand-in for a dry run).
    """
    result: dict[str, Any] = {}
    if config.cluster_init:
        result["cluster-init"] = True
    else:
        result["server"] = config.server
    result["token"] = token
    if config.role == "server":
        if config.tls_sans:
            result["tls-san"] = list(config.tls_sans)
        result["write-kubeconfig"] = KUBECONFIG
        result["write-kubeconfig-mode"] = "0600"
        result["flannel-backend"] = "vxlan"
        # Spegel: nodes serve each other's images on 5001 instead of all pulling.
        result["embedded-registry"] = True
        # LLMOS has its own front door on 8443; k3s' ingress would only cost memory.
        result["disable"] = ["traefik"]
    if config.node_name:
        result["node-name"] = config.node_name
    if config.internal_address:
        result["node-ip"] = config.internal_address
    if config.address:
        result["node-external-ip"] = config.address
    if config.labels:
        result["node-label"] = [f"{key}={value}" for key, value in sorted(config.labels.items())]
    if config.taints:
        result["node-taint"] = list(config.taints)
    result.update(config.extra_config)
    return result


def registries(config: InstallConfig) -> dict[str, Any]:
    """``registries.yaml``: given mirrors, or Spegel mirroring every registry."""
    return config.registries or {"mirrors": {"*": {}}}


def unit_name(config: InstallConfig) -> str:
    return "k3s" if config.role == "server" else "k3s-agent"


def unit(config: InstallConfig) -> str:
    """The systemd unit that runs k3s in this node's role."""
    kind = "notify" if config.role == "server" else "exec"
    return f"""\
[Unit]
Description=Kubernetes for LLMOS (k3s {config.role})
Documentation=https://docs.k3s.io
Wants=network-online.target
After=network-online.target

[Service]
Type={kind}
EnvironmentFile=-/etc/default/{unit_name(config)}
KillMode=process
Delegate=yes
LimitNOFILE=1048576
LimitNPROC=infinity
LimitCORE=infinity
TasksMax=infinity
TimeoutStartSec=0
Restart=always
RestartSec=5s
ExecStartPre=-/sbin/modprobe br_netfilter
ExecStartPre=-/sbin/modprobe overlay
ExecStart={K3S_BIN} {config.role}

[Install]
WantedBy=multi-user.target
"""
