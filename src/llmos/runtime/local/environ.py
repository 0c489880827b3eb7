"""The environment and argv a replica process starts with.

Called by the supervisor before each start. A replica does not inherit the
server's environment: it gets a small allow-list of variables that describe
the machine and the user (:data:`INHERITED`, plus every ``LC_*``), then
``PYTHONUNBUFFERED=1`` so Python engines' logs arrive line by line, then the
spec's own env, then ``PORT``. Secrets in the server's environment (tokens,
``LLMOS_*`` settings) and its ``CUDA_VISIBLE_DEVICES`` therefore never leak
into workloads; GPUs are given to a replica by the caller through
``spec.env``. ``{port}`` is replaced in the command and in env values.
"""

from __future__ import annotations

from collections.abc import Mapping

from llmos.runtime.base import ReplicaSpec
from llmos.runtime.local.ports import substitute

__all__ = ["INHERITED", "render_command", "render_env"]

INHERITED = frozenset(
    {
        # who and where
        "PATH",
        "HOME",
        "USER",
        "LOGNAME",
        "SHELL",
        "TMPDIR",
        "TZ",
        "LANG",
        "LANGUAGE",
        # Python environments the engines may be installed in
        "VIRTUAL_ENV",
        "CONDA_PREFIX",
        "CONDA_DEFAULT_ENV",
        # CUDA toolkits that are not on the default loader path
        "LD_LIBRARY_PATH",
        "CUDA_HOME",
        "CUDA_PATH",
        # model downloads behind a proxy or a private CA
        "HTTP_PROXY",
        "HTTPS_PROXY",
        "NO_PROXY",
        "http_proxy",
        "https_proxy",
        "no_proxy",
        "SSL_CERT_FILE",
        "SSL_CERT_DIR",
        "REQUESTS_CA_BUNDLE",
    }
)
DEFAULTS = {"PYTHONUNBUFFERED": "1"}


def render_env(spec: ReplicaSpec, port: int | None, parent: Mapping[str, str]) -> dict[str, str]:
    """The full environment for one start of ``spec`` on ``port``."""
    env = {k: v for k, v in parent.items() if k in INHERITED or k.startswith("LC_")}
    env.update(DEFAULTS)
    env.update((name, substitute(value, port)) for name, value in spec.env)
    if port is not None:
        env["PORT"] = str(port)
    return env


def render_command(spec: ReplicaSpec, port: int | None) -> list[str]:
    """``spec.command`` with ``{port}`` filled in."""
    return [substitute(arg, port) for arg in spec.command]
