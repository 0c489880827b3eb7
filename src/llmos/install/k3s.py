"""The files that set up k3s on one node: its config, the registry mirror, its systemd unit.

``install.plan`` writes what these functions return. k3s reads
``/etc/rancher/k3s/config.yaml`` (flag names as keys) and ``registries.yaml``;
the unit follows the one k3s' own installer writes, under the same name
(``k3s`` on servers, ``k3s-agent`` on agents) so k3s' own tools still work.
"""

from __future__ import annotations

from typing import Any

from llmos._lib.jointoken import JoinToken
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
    "unit",
    "unit_name",
]

K3S_BIN = "/usr/local/bin/k3s"
CONFIG_PATH = "/etc/rancher/k3s/config.yaml"
REGISTRIES_PATH = "/etc/rancher/k3s/registries.yaml"
KUBECONFIG = "/etc/llmos/kubeconfig.yaml"
MANIFESTS_DIR = "/var/lib/rancher/k3s/server/manifests"  # k3s applies what is put here
IMAGES_DIR = "/var/lib/rancher/k3s/agent/images"  # air-gap image tarballs


def k3s_config(config: InstallConfig) -> dict[str, Any]:
    """``/etc/rancher/k3s/config.yaml``: the k3s flags for this node."""
    result: dict[str, Any] = {}
    if config.cluster_init:
        result["cluster-init"] = True
    else:
        result["server"] = config.server
    # k3s gets the bare secret: the K10 hash of a join token pins LLMOS's CA, not k3s' own.
    result["token"] = JoinToken.parse(config.token).secret
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
