"""The cluster join token: a shared secret, optionally pinned to the server's CA, k3s-style.

The full form is ``K10<sha256 hex of the CA bundle>::<secret>``, as k3s prints
its own tokens: a joining node fetches the server's CA (``/v1-public/cacerts``)
without trusting it, checks that its SHA-256 is the one in the token, and only
then trusts it. The bare ``<secret>`` alone is also a token, but it pins
nothing. ``llmos install`` (the first server prints the full form), the
server's ``/v1-cluster/cluster-info`` route and the join handshake use this.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from dataclasses import dataclass

__all__ = ["PREFIX", "JoinToken", "ca_hash"]

PREFIX = "K10"
_FULL = re.compile(r"^K10([0-9a-f]{64})::(.+)$")


def ca_hash(pem: bytes) -> str:
    """The SHA-256 (hex) of a CA bundle exactly as the server serves it."""
    return hashlib.sha256(pem).hexdigest()


@dataclass(frozen=True)
class JoinToken:
    secret: str
    """What the server checks; k3s gets it bare (first server) or in its secure token (others)."""
    ca_hash: str | None = None
    """SHA-256 of the server's CA bundle; None for a bare token."""

    @classmethod
    def parse(cls, text: str) -> JoinToken:
        text = text.strip()
        match = _FULL.match(text)
        if match:
            return cls(secret=match.group(2), ca_hash=match.group(1))
        if text.startswith(PREFIX) and "::" in text:
            raise ValueError(
                "the token looks like a join token (K10<hash>::<secret>) but its hash is not "
                "64 hex digits: copy it again from the first server (/etc/llmos/join-token)"
            )
        return cls(secret=text)

    def __str__(self) -> str:
        return f"{PREFIX}{self.ca_hash}::{self.secret}" if self.ca_hash else self.secret

    def matches(self, offered: str) -> bool:
        """Whether ``offered`` (bare or full) carries this token's secret; constant time."""
        try:
            secret = JoinToken.parse(offered).secret
        except ValueError:
            return False
        return hmac.compare_digest(secret.encode(), self.secret.encode())
