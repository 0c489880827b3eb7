"""What a notebook's Jupyter is told so that it lets in the LLMOS proxy and nobody else.

The identity provider itself is :mod:`llmos.runtime.jupyter_identity`, which
runs inside Jupyter: in embedded mode it is imported from this package; in
cluster mode the notebook's Secret carries its source as a file
(:data:`IDENTITY_FILE`), mounted in the pod at :data:`IDENTITY_DIR`.
"""

from __future__ import annotations

import functools
from importlib import resources

SECRET_ENV = "LLMOS_NOTEBOOK_SECRET"  # jupyter_identity.SECRET_ENV, without importing Jupyter
EMBEDDED_MODULE = "llmos.runtime.jupyter_identity"
IDENTITY_FILE = "llmos_jupyter_identity.py"  # its name in a pod, on PYTHONPATH
IDENTITY_DIR = "/etc/llmos/jupyter"


def identity_flag(module: str) -> str:
    """The Jupyter flag that makes ``module``'s identity provider the one in charge."""
    return f"--ServerApp.identity_provider_class={module}.ProxySecretIdentity"


@functools.cache
def identity_source() -> str:
    """The identity provider's source, for a pod's Secret (read once: each render wants it)."""
    return resources.files("llmos.runtime").joinpath("jupyter_identity.py").read_text()
