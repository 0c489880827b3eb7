"""An installation as a list of steps: files to write and commands to run, in order.

``llmos install`` (to come) runs preflight for the role, then the steps of
:func:`install_plan`; ``--dry-run`` prints :func:`describe` instead and changes
nothing; tests write the files under a fixture root with :func:`write_files`.
``llmos uninstall`` is :func:`uninstall_plan`.
"""

from __future__ import annotations

import os
import shlex
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

__all__ = ["Run", "Step", "WriteFile", "describe", "install_plan", "uninstall_plan", "write_files"]

INSTALL_SCRIPT_URL = "https://get.k3s.io"  # k3s' official install script


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


Step = WriteFile | Run


def install_plan(
    config: InstallConfig,
    *,
    airgap_dir: Path | None = None,
    cluster: ClusterOptions | None = None,
) -> list[Step]:
    """Every step that makes this host a node of the cluster ``config`` describes."""
    steps: list[Step] = [*_install_k3s(config, airgap_dir)]
    steps += [
        Run(("mkdir", "-p", "-m", "0700", str(Path(KUBECONFIG).parent)), "LLMOS's config folder"),
        # The token is a secret: the config is root's alone.
        WriteFile(CONFIG_PATH, yaml.safe_dump(k3s_config(config), sort_keys=False), 0o600),
        WriteFile(REGISTRIES_PATH, yaml.safe_dump(registries(config), sort_keys=False)),
        WriteFile(f"/etc/systemd/system/{unit_name(config)}.service", unit(config)),
    ]
    if config.cluster_init:  # k3s applies the folder's manifests on the first server
        steps.append(WriteFile(f"{MANIFESTS_DIR}/llmos.yaml", to_yaml(manifests(cluster)), 0o600))
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


def uninstall_plan(config: InstallConfig) -> list[Step]:
    """Remove k3s (its own uninstall script: units, data, network) and LLMOS's files."""
    script = "k3s-uninstall.sh" if config.role == "server" else "k3s-agent-uninstall.sh"
    return [
        Run((f"/usr/local/bin/{script}",), "k3s' own uninstall: services, data, network"),
        Run(("rm", "-f", KUBECONFIG), "LLMOS's kubeconfig"),
    ]


def describe(steps: list[Step]) -> str:
    """The plan as text: each file with its content, each command with its environment."""
    parts: list[str] = []
    for number, step in enumerate(steps, 1):
        if isinstance(step, WriteFile):
            body = step.content if step.content.endswith("\n") else step.content + "\n"
            parts.append(f"# {number}. write {step.path} (mode {step.mode:04o})\n{body}")
        else:
            env = "".join(f"{key}={value} " for key, value in step.env)
            parts.append(f"# {number}. run: {step.why}\n{env}{_shell(step.argv)}\n")
    return "\n".join(parts)


def _shell(argv: tuple[str, ...]) -> str:
    return " ".join(shlex.quote(arg) for arg in argv)


def write_files(steps: list[Step], root: Path) -> list[Path]:
    """Write the plan's files under ``root`` (``/`` for real); run no command."""
    written = []
    for step in steps:
        if isinstance(step, WriteFile):
            target = root / step.path.lstrip("/")
            target.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, step.mode)
            with os.fdopen(fd, "w") as handle:
                handle.write(step.content)
            os.chmod(target, step.mode)
            written.append(target)
    return written
