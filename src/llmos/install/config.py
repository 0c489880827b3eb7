"""What ``llmos install`` is told: one node's part in a cluster, with LLMOS's field names.

The keys of ``/etc/llmos/config.yaml`` are the camelCase names (``nodeName``,
``tlsSans``, ``kubernetesVersion`` …), as for ``llmos server``.
:class:`InstallConfig` checks that they make sense together: the first server
has ``clusterInit`` and no ``server``; every other node names a ``server`` and
all of them share a ``token``.
"""

from __future__ import annotations

import re
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator
from pydantic.alias_generators import to_camel

from llmos._lib.jointoken import JoinToken

__all__ = ["K3S_VERSION", "InstallConfig"]

# The k3s release LLMOS installs, matching the Kubernetes of the test control plane
# (scripts/setup-kube-fixture.sh). Not checked against a real k3s here:
# scripts/k3s-smoke.sh (to come) does that on a VM.
K3S_VERSION = "v1.36.3+k3s1"

_TAINT = re.compile(r"^[A-Za-z0-9./-]+(=[A-Za-z0-9._-]*)?:(NoSchedule|PreferNoSchedule|NoExecute)$")
_VERSION = re.compile(r"^v\d+\.\d+\.\d+\+k3s\d+$")


class InstallConfig(BaseModel):
    """One node's installation. Unknown keys are an error, not ignored."""

    model_config = ConfigDict(extra="forbid", alias_generator=to_camel, populate_by_name=True)

    role: Literal["server", "agent"] = "server"
    cluster_init: bool = Field(default=False, description="Start a new cluster (first server).")
    server: str | None = Field(default=None, description="https://HOST:6443 of a server.")
    token: str = Field(
        min_length=16,
        description="The cluster's join secret: plain on the first server; on the others "
        "the join token it printed (K10<CA hash>::<secret>), which also pins its CA.",
    )
    node_name: str | None = None
    address: str | None = Field(default=None, description="External IP (node-external-ip).")
    internal_address: str | None = Field(default=None, description="Internal IP (node-ip).")
    labels: dict[str, str] = Field(default_factory=dict)
    taints: list[str] = Field(default_factory=list, description="key[=value]:Effect")
    tls_sans: list[str] = Field(default_factory=list)
    kubernetes_version: str = Field(default=K3S_VERSION, description="A k3s release.")
    registries: dict[str, Any] = Field(
        default_factory=dict, description="registries.yaml content (mirrors, configs)."
    )
    extra_config: dict[str, Any] = Field(
        default_factory=dict, description="More k3s config keys, passed through as they are."
    )

    @model_validator(mode="after")
    def _consistent(self) -> InstallConfig:
        if self.role == "agent" and self.cluster_init:
            raise ValueError("clusterInit is for the first server; an agent joins a server")
        if self.cluster_init and self.server:
            raise ValueError(
                f"clusterInit starts a new cluster, so server ({self.server}) must be empty; "
                "drop one of them"
            )
        try:
            token = JoinToken.parse(self.token)
        except ValueError as exc:
            raise ValueError(f"token: {exc}") from exc
        if self.cluster_init and token.ca_hash:
            raise ValueError(
                "token: the first server takes the plain shared secret, not a join token "
                "(K10…::…); it prints the join token for the other nodes when it is done"
            )
        if len(token.secret) < 16:
            raise ValueError("token: the secret after '::' must be at least 16 characters")
        if not self.cluster_init and not self.server:
            raise ValueError(
                "server is required to join a cluster (https://HOST:6443 of a server), or set "
                "clusterInit: true on the first server"
            )
        if self.server and not re.match(r"^https://[^/\s]+:\d+$", self.server):
            raise ValueError(f"server {self.server!r} must look like https://HOST:6443")
        for taint in self.taints:
            if not _TAINT.match(taint):
                raise ValueError(
                    f"taint {taint!r} must be key[=value]:Effect, with Effect one of "
                    "NoSchedule, PreferNoSchedule, NoExecute"
                )
        if not _VERSION.match(self.kubernetes_version):
            raise ValueError(
                f"kubernetesVersion {self.kubernetes_version!r} must be a k3s release such as "
                f"{K3S_VERSION}"
            )
        return self
