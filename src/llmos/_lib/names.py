"""Random name suffixes for ``metadata.generateName`` (DNS rules: ``llmos._lib.dns``)."""

from __future__ import annotations

import secrets
import string

_SUFFIX_ALPHABET = string.ascii_lowercase + string.digits


def random_suffix(length: int = 5) -> str:
    """A random lowercase suffix for ``metadata.generateName``."""
    return "".join(secrets.choice(_SUFFIX_ALPHABET) for _ in range(length))
