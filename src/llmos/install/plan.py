"""An installation as a list of steps: files to write and commands to run, in order.

``llmos install`` (``cli/install.py``) runs preflight for the role, then the
steps of :func:`install_plan` (``install/execute.py``); ``--dry-run`` prints
:func:`describe` instead and changes nothing; tests write the files under a
fixture root with :func:`write_files`. ``llmos uninstall`` is :func:`uninstall_plan`.
"""

from __future__ import annotations

import contextlib
import os
import shlex
import tempfile
from dataclasses import dataclass
from pathlib import Path

import yaml

from llmos.install.config import InstallConfig
from llmos.install.k3s import (
    CONFIG_PATH,
    IMAGES_DIR,
    K3S_BIN,
    KUBECONFIG,
    MANIFESTS_DIR,
    REGISTRIES_PATH,
    k3s_config,
    registries,
    unit,
    unit_name,
)
from llmos.install.manifests import ClusterOptions, manifests, to_yaml
from llmos.install.secrets import ClusterSecrets

__all__ = [
    "BOOTSTRAP_PASSWORD_PATH",
    "JOIN_TOKEN_PATH",
    "LLMOS_ETC",
    "Remove",
    "Run",
    "Step",
    "WriteFile",
    "describe",
    "install_plan",
    "uninstall_plan",
    "write_file",
    "write_files",
]

INSTALL_SCRIPT_URL = "https://get.k3s.io"  # k3s' official install script
LLMOS_ETC = str(Path(KUBECONFIG).parent)
BOOTSTRAP_PASSWORD_PATH = f"{LLMOS_ETC}/bootstrap-password"
JOIN_TOKEN_PATH = f"{LLMOS_ETC}/join-token"


@dataclass(frozen=True)
class WriteFile:
    path: str
    content: str
    mode: int = 0o644


@dataclass(frozen=True)
class Run:
    argv: tuple[str, ...]
    why: str
    env: tuple[tuple[str, str], ...] = ()
    only_if: str | None = None
    """Run only when this path exists on the host (uninstalling what may be half there)."""


@dataclass(frozen=True)
class Remove:
    """Delete a file or a folder with its content; nothing to do when it is not there."""

    path: str
    why: str


Step = WriteFile | Run | Remove


def install_plan(
    config: InstallConfig,
    *,
    airgap_dir: Path | None = None,
    cluster: ClusterOptions | None = None,
    secrets: ClusterSecrets | None = None,
    k3s_token: str | None = None,
) -> list[Step]:
    """Every step that makes this host a node of the cluster ``config`` describes.

    The first server needs ``secrets`` (:meth:`ClusterSecrets.generate`, or
    :meth:`ClusterSecrets.placeholder` for a dry run), and gives k3s their
    secret. A joining node needs ``k3s_token``, what k3s gets to join with
    (``install.join.k3s_token``: k3s' secure token, from the join handshake).
    """
    if config.cluster_init:
        if secrets is None:
            raise ValueError("the first server's plan needs its ClusterSecrets")
        k3s_token = secrets.cluster_token
    elif k3s_token is None:
        raise ValueError("a joining node's plan needs k3s' token, from the join handshake")
    steps: list[Step] = [*_install_k3s(config, airgap_dir)]
    steps += [
        Run(("mkdir", "-p", "-m", "0700", LLMOS_ETC), "LLMOS's config folder"),
        # The token is a secret: the config is root's alone.
        WriteFile(
            CONFIG_PATH, yaml.safe_dump(k3s_config(config, k3s_token), sort_keys=False), 0o600
        ),
        WriteFile(REGISTRIES_PATH, yaml.safe_dump(registries(config), sort_keys=False)),
        WriteFile(f"/etc/systemd/system/{unit_name(config)}.service", unit(config)),
    ]
    if secrets is not None and config.cluster_init:
        # k3s applies the folder's manifests on the first server; they hold the Secrets.
        deployed = to_yaml(manifests(cluster, secrets))
        steps += [
            WriteFile(f"{MANIFESTS_DIR}/llmos.yaml", deployed, 0o600),
            WriteFile(BOOTSTRAP_PASSWORD_PATH, secrets.admin_password + "\n", 0o600),
            WriteFile(JOIN_TOKEN_PATH, secrets.join_token + "\n", 0o600),
        ]
    steps += [
        Run(("systemctl", "daemon-reload"), "load the unit"),
        Run(("systemctl", "enable", "--now", unit_name(config)), "start k3s now and at boot"),
    ]
    return steps


def _install_k3s(config: InstallConfig, airgap_dir: Path | None) -> list[Step]:
    env = (
        ("INSTALL_K3S_VERSION", config.kubernetes_version),
        ("INSTALL_K3S_EXEC", config.role),
        # LLMOS writes the unit's config and starts it itself, once everything is in place.
        ("INSTALL_K3S_SKIP_ENABLE", "true"),
        ("INSTALL_K3S_SKIP_START", "true"),
    )
    if airgap_dir is None:
        return [
            Run(
                ("sh", "-c", f"curl -sfL {INSTALL_SCRIPT_URL} | sh -"),
                f"install k3s {config.kubernetes_version} with its official script",
                env,
            )
        ]
    return [
        Run(("install", "-m", "0755", str(airgap_dir / "k3s"), K3S_BIN), "the k3s binary"),
        Run(("mkdir", "-p", IMAGES_DIR), "the air-gap image folder"),
        Run(
            ("sh", "-c", f'cp "{airgap_dir}"/k3s-airgap-images-* {IMAGES_DIR}/'),
            "k3s' images, so no registry is needed",
        ),
        Run(
            ("sh", str(airgap_dir / "install.sh")),
            "k3s' install script, without downloads",
            (*env, ("INSTALL_K3S_SKIP_DOWNLOAD", "true")),
        ),
    ]


def uninstall_plan() -> list[Step]:
    """Remove k3s (its own uninstall script: units, containers, data, network) and LLMOS's files.

    Either role's leftovers go, and each step copes with what is already gone, so
    uninstalling a half-done install works too.
    """
    steps: list[Step] = []
    for script in ("k3s-uninstall.sh", "k3s-agent-uninstall.sh"):
        path = f"/usr/local/bin/{script}"
        steps.append(
            Run((path,), "k3s' own uninstall: services, containers, data, network", only_if=path)
        )
    for name in ("k3s", "k3s-agent"):
        unit_path = f"/etc/systemd/system/{name}.service"
        steps += [
            Run(
                ("systemctl", "disable", "--now", name),
                "stop a k3s whose uninstall script is missing",
                only_if=unit_path,
            ),
            Remove(unit_path, "the systemd unit"),
        ]
    steps += [
        Remove(str(Path(CONFIG_PATH).parent), "k3s' config and registries"),
        Remove(f"{MANIFESTS_DIR}/llmos.yaml", "LLMOS's manifests"),
        Remove(LLMOS_ETC, "LLMOS's config, kubeconfig, join token and bootstrap password"),
        Run(("systemctl", "daemon-reload"), "forget the units", only_if="/run/systemd/system"),
    ]
    return steps


def describe(steps: list[Step]) -> str:
    """The plan as text: each file with its content, each command with its environment."""
    parts: list[str] = []
    for number, step in enumerate(steps, 1):
        if isinstance(step, WriteFile):
            body = step.content if step.content.endswith("\n") else step.content + "\n"
            parts.append(f"# {number}. write {step.path} (mode {step.mode:04o})\n{body}")
        elif isinstance(step, Remove):
            parts.append(f"# {number}. remove: {step.why}\nrm -rf {shlex.quote(step.path)}\n")
        else:
            env = "".join(f"{key}={value} " for key, value in step.env)
            when = f" (if {step.only_if} exists)" if step.only_if else ""
            parts.append(f"# {number}. run: {step.why}{when}\n{env}{_shell(step.argv)}\n")
    return "\n".join(parts)


def _shell(argv: tuple[str, ...]) -> str:
    return " ".join(shlex.quote(arg) for arg in argv)


def write_files(steps: list[Step], root: Path) -> list[Path]:
    """Write the plan's files under ``root`` (``/`` for real); run no command."""
    return [write_file(step, root) for step in steps if isinstance(step, WriteFile)]


def write_file(step: WriteFile, root: Path) -> Path:
    """Write one file under ``root`` with its mode, never readable by more than that mode allows.

    The content goes to a new file in the same folder, made with the final mode
    (``mkstemp`` makes it 0600, then ``fchmod`` before any byte is written), and
    is renamed over the target: an existing file is replaced whole, so a new
    secret never sits, even briefly, under the old file's looser mode.
    """
    target = root / step.path.lstrip("/")
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, temp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.")
    try:
        with os.fdopen(fd, "w") as handle:
            os.fchmod(handle.fileno(), step.mode)
            handle.write(step.content)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temp, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temp)
        raise
    return target
