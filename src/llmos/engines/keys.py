"""The key each ModelService's replicas want from their callers, so only the gateway gets in.

An engine replica listens on a 127.0.0.1 port that any process on the machine
can reach. Each one is started with a key of its own (in its environment, which
other users cannot read) and answers its model routes only to requests that
carry it; the gateway, which holds the same key, adds it to what it forwards. So
nothing on the machine bypasses the gateway's auth, scopes and rate limits.

The key is an HMAC of the ModelService's uid under a server secret in the data
dir: stable across server restarts (adopted replicas keep theirs), different for
each ModelService (a re-created one of the same name gets a new one), and never
stored in an object or shown by the API. Health routes stay open for the probe.

Cluster mode does not use it: there a NetworkPolicy admits only the server's
pod to an engine's pods.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from llmos._lib.keys import ServerKey


class EngineKeys:
    def __init__(self, path: Path) -> None:
        self._key = ServerKey(path)

    @classmethod
    def of(cls, data_dir: Path) -> EngineKeys:
        """The keys of the server whose data dir is ``data_dir``."""
        return cls(data_dir / "runtime" / "engine.key")

    def for_uid(self, uid: str) -> str:
        return self._key.derive(f"engine/{uid}")

    def for_service(self, ms: dict[str, Any]) -> str | None:
        """The key of ``ms``'s replicas; None for one that routes to an outside ``spec.endpoint``."""
        if (ms.get("spec") or {}).get("endpoint"):
            return None
        return self.for_uid(ms["metadata"]["uid"])
