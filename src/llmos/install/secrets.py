"""What the first server's install generates once for the whole cluster.

The bootstrap admin password, one CA and server certificate, and the join
token's secret go into Secrets in ``llmos-system`` (``manifests``), so every
replica of the LLMOS server has the same admin, presents the same certificate,
and checks the same join token. ``llmos install --cluster-init`` makes them
with :meth:`ClusterSecrets.generate`; ``--dry-run`` shows
:meth:`ClusterSecrets.placeholder` instead, so no secret reaches the terminal:
not even the join secret the user gave, which shows as :data:`HIDDEN` wherever
it would go (k3s' config, the ``llmos-cluster-token`` Secret, the join token).
"""

from __future__ import annotations

import secrets
import tempfile
from dataclasses import dataclass
from pathlib import Path

from llmos._lib.jointoken import JoinToken, ca_hash
from llmos._lib.tls import ensure_certificates
from llmos.install.config import InstallConfig

__all__ = ["HIDDEN", "ClusterSecrets", "service_names"]

_PLACEHOLDER = "<generated at install>"
HIDDEN = "<hidden-cluster-token>"
"""What a dry run shows instead of the join secret it was given."""


def service_names(namespace: str, service: str) -> list[str]:
    """The DNS names of the LLMOS Service inside the cluster."""
    return [
        service,
        f"{service}.{namespace}",
        f"{service}.{namespace}.svc",
        f"{service}.{namespace}.svc.cluster.local",
    ]


@dataclass(frozen=True)
class ClusterSecrets:
    admin_password: str
    ca_cert: str
    """PEM; what /v1-public/cacerts serves, and what the join token's hash pins."""
    tls_cert: str
    tls_key: str
    cluster_token: str
    """The bare join secret (also k3s' token)."""

    @classmethod
    def generate(cls, config: InstallConfig, names: list[str]) -> ClusterSecrets:
        """A new admin password and CA; a certificate for this host, ``names`` and tlsSans."""
        extra = [*config.tls_sans, *names]
        extra += [n for n in (config.node_name, config.address, config.internal_address) if n]
        with tempfile.TemporaryDirectory(prefix="llmos-install-tls-") as work:
            files = ensure_certificates(Path(work), sorted(set(extra)))
            ca, cert, key = (p.read_text() for p in (files.ca_cert, files.cert, files.key))
        return cls(
            admin_password=secrets.token_urlsafe(18),
            ca_cert=ca,
            tls_cert=cert,
            tls_key=key,
            cluster_token=JoinToken.parse(config.token).secret,
        )

    @classmethod
    def placeholder(cls) -> ClusterSecrets:
        """Stand-ins for a dry run: the shape of the Secrets without their content."""
        return cls(
            admin_password=_PLACEHOLDER,
            ca_cert=_PLACEHOLDER,
            tls_cert=_PLACEHOLDER,
            tls_key=_PLACEHOLDER,
            cluster_token=HIDDEN,
        )

    @property
    def is_placeholder(self) -> bool:
        return self.ca_cert == _PLACEHOLDER

    @property
    def join_token(self) -> str:
        """``K10<sha256 of the CA>::<secret>``: what the other nodes pass as ``--token``."""
        if self.is_placeholder:
            return f"K10<sha256 of the CA made at install>::{self.cluster_token}"
        return str(JoinToken(self.cluster_token, ca_hash(self.ca_cert.encode())))
