"""How each notebook type is launched: its command line, environment, health check and the
folders the sandbox must show it (JupyterLab, VS Code's code-server, RStudio Server).

A launcher raises :class:`NotebookUnavailable` when this node lacks what the type
needs, which the reconciler turns into a ``NotebookUnavailable`` condition.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from llmos.controllers.errors import PermanentError
from llmos.runtime.jupyter_auth import EMBEDDED_MODULE, SECRET_ENV, identity_flag

__all__ = [
    "CODE_SERVER_COOKIE",
    "LAUNCHERS",
    "Launch",
    "NotebookUnavailable",
    "code_server_path",
    "login_shell",
]


@dataclass(frozen=True)
class Launch:
    """How to run one notebook type: command, env and health check."""

    command: tuple[str, ...]
    env: dict[str, str]
    health: str  # a path that answers 2xx without the secret once the server is up
    readable: tuple[Path, ...] = ()  # what it runs from, which the sandbox must show
    writable: tuple[Path, ...] = ()  # its home and volumes, bound writable in the sandbox


class NotebookUnavailable(PermanentError):
    """This node cannot run the notebook type (a package or program is missing)."""


def _jupyter(base: str, cwd: Path, secret: str, home: Path, user: str) -> Launch:
    if importlib.util.find_spec("jupyterlab") is None:
        raise NotebookUnavailable(
            "JupyterLab is not installed on this node: install the notebooks extra "
            "(pip install 'llmos[notebooks]', or scripts/setup)"
        )
    command: tuple[str, ...] = (
        sys.executable,
        "-P",  # its working dir is the user's: a logging.py there must not stand in for Python's
        "-m",
        "jupyterlab",
        "--no-browser",
        "--ServerApp.ip=127.0.0.1",
        "--ServerApp.port={port}",
        "--ServerApp.port_retries=0",
        f"--ServerApp.base_url={base}",
        f"--ServerApp.root_dir={cwd}",
        # Only the LLMOS proxy can reach the port, and it checks the user; the
        # browser's Origin is this server's, not 127.0.0.1.
        "--ServerApp.allow_origin=*",
        "--ServerApp.trust_xheaders=True",
        "--LabApp.news_url=",
        "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
        # No extension installs from PyPI at run time: the node may be offline.
        "--LabApp.extension_manager=readonly",
        # Lets in only what carries the secret, which no page it serves shows.
        identity_flag(EMBEDDED_MODULE),
    )
    if user == "root":
        command += ("--allow-root",)
    env = {
        SECRET_ENV: secret,
        "JUPYTER_CONFIG_DIR": str(home / "config"),
        "JUPYTER_DATA_DIR": str(home / "data"),
        "JUPYTER_RUNTIME_DIR": str(home / "runtime"),
        "IPYTHONDIR": str(home / "ipython"),
    }
    return Launch(command, env, f"{base}api")


CODE_SERVER_COOKIE = "code-server-session"  # code-server's session cookie: the secret


def code_server_path() -> str | None:
    """code-server from ``scripts/setup --vscode`` (or LLMOS_CODE_SERVER, or PATH)."""
    configured = os.environ.get("LLMOS_CODE_SERVER")
    if configured:
        return configured if os.access(configured, os.X_OK) else None
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    bundled = cache / "llmos" / "code-server" / "node_modules" / ".bin" / "code-server"
    if os.access(bundled, os.X_OK):
        return str(bundled)
    return shutil.which("code-server")


def _vscode(base: str, cwd: Path, secret: str, home: Path, user: str) -> Launch:
    binary = code_server_path()
    if binary is None:
        raise NotebookUnavailable(
            "VS Code (code-server) is not installed on this node: run scripts/setup --vscode"
        )
    command = (
        binary,
        "--bind-addr=127.0.0.1:{port}",
        # Password auth with the secret as the "hashed password": code-server then lets in a
        # request whose session cookie equals it (the proxy sends that cookie), and its login
        # form wants a password whose SHA-256 is the secret, which nobody has.
        "--auth=password",
        # Every option is on this line; without a config file of its own, code-server would
        # write ~/.config/code-server/config.yaml with a password of its own.
        "--config=/dev/null",
        # Its /proxy/PORT/ routes would forward the session cookie, the secret, to any local
        # port (so VS Code's port forwarding is off too, below).
        "--disable-proxy",
        "--disable-telemetry",
        "--disable-update-check",
        "--disable-workspace-trust",
        f"--user-data-dir={home / 'user-data'}",
        f"--extensions-dir={home / 'extensions'}",
        str(cwd),
    )
    machine = home / "user-data" / "Machine" / "settings.json"
    if not machine.exists():  # defaults only: users may change them
        machine.parent.mkdir(parents=True, exist_ok=True)
        machine.write_text('{\n  "remote.autoForwardPorts": false\n}\n')
    # code-server reads HASHED_PASSWORD and removes it from the environment of its children.
    return Launch(command, {"HASHED_PASSWORD": secret}, "/healthz", _node_installs(binary))


def _node_installs(binary: str) -> tuple[Path, ...]:
    """Where code-server and the node that runs it are installed (npm prefixes)."""
    found = []
    for program in (Path(binary), Path(shutil.which("node") or "/usr/bin/node")):
        for path in (program.absolute(), program.resolve()):
            prefix = next((p.parent for p in path.parents if p.name == "node_modules"), None)
            found.append(prefix or path.parent.parent)
    return tuple(found)


def _rstudio(base: str, cwd: Path, secret: str, home: Path, user: str) -> Launch:
    """RStudio Server (open source, 1.4 or later) as ``user``, in the foreground, behind the proxy.

    Its open-source edition has no way to require a secret: it runs with
    ``--auth-none`` on 127.0.0.1, as jupyter-rsession-proxy runs it, so a local
    process on the node can reach its port (docs/workloads.md).
    """
    if shutil.which("rserver") is None:
        raise NotebookUnavailable(
            "RStudio is not available on this node: rstudio-server is not installed"
        )
    state = home / "rserver"
    (state / "db").mkdir(parents=True, exist_ok=True)
    database = state / "database.conf"
    database.write_text(f"provider=sqlite\ndirectory={state / 'db'}\n")
    command = (
        "rserver",
        "--www-address=127.0.0.1",
        "--www-port={port}",
        f"--www-root-path={base}",  # the proxy's prefix, for its redirects
        "--auth-none=1",
        f"--server-user={user}",  # whom it runs as: nobody in a root server's sandbox
        "--server-daemonize=0",  # the runtime supervises it
        f"--server-data-dir={state / 'run'}",
        f"--database-config-file={database}",
        f"--secure-cookie-key-file={state / 'secure-cookie-key'}",
        "--www-frame-origin=same",
        "--www-verify-user-agent=0",
    )
    return Launch(command, {}, "/")


# Each is called with the base path, working dir, secret, home and the user it runs as.
LAUNCHERS: dict[str, Callable[[str, Path, str, Path, str], Launch]] = {
    "jupyter": _jupyter,
    "vscode": _vscode,
    "rstudio": _rstudio,
}


def login_shell(
    environ: dict[str, str] | None = None, runs: Callable[[str], bool] = lambda path: True
) -> str:
    """The shell a notebook's terminals start: the server's ``$SHELL`` when it is one a person
    can log in with and the notebook ``runs`` (the sandbox may hide it: one under the
    server's home), else bash, else sh.

    Terminals (Jupyter's terminado, VS Code's node-pty) take ``$SHELL``, and without it the
    user's shell in ``/etc/passwd``: a service user's ``nologin``, or ``nobody``'s in the
    sandbox, which exits at once.
    """
    configured = (environ if environ is not None else os.environ).get("SHELL", "")
    found = shutil.which(configured) if configured else None  # a bare name, on PATH
    if found and Path(found).name not in {"nologin", "false", "true"} and runs(found):
        return found
    return next((s for s in ("/bin/bash", "/usr/bin/bash") if os.access(s, os.X_OK)), "/bin/sh")
