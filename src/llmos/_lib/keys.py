"""A server-held key in a file of its own, and the secrets derived from it.

The key is 32 random bytes in a 0600 file, made on first use. Secrets derived
from it (an HMAC-SHA256 of a label) are stable across restarts and known only
to this server: notebook secrets and Ray cluster tokens use them.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
from pathlib import Path


class ServerKey:
    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        if not path.exists():
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "wb") as handle:
                handle.write(secrets.token_bytes(32))
        self._key = path.read_bytes()

    def derive(self, label: str) -> str:
        """The hex HMAC-SHA256 of ``label`` under this key."""
        return hmac.new(self._key, label.encode(), hashlib.sha256).hexdigest()
