"""Where ``llmos install`` gets its configuration: the config file, ``LLMOS_*`` and flags.

Flags win over the environment, which wins over ``/etc/llmos/config.yaml``
(``--config``); the result is an :class:`~llmos.install.config.InstallConfig`,
or a usage error (exit 2) that names the field, its flag, variable and key.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any, NoReturn

import typer
import yaml
from pydantic import ValidationError

from llmos.api.config import INSTALL_KEYS, SERVER_KEYS
from llmos.install.config import InstallConfig

CONFIG_FILE = Path("/etc/llmos/config.yaml")
USAGE = 2
# Flags (and LLMOS_* variables) of InstallConfig's fields: name -> config key.
_SCALARS = {
    "role": "role",
    "cluster_init": "clusterInit",
    "server": "server",
    "token": "token",
    "node_name": "nodeName",
    "address": "address",
    "internal_address": "internalAddress",
    "kubernetes_version": "kubernetesVersion",
}
_LISTS = {"label": "labels", "taint": "taints", "tls_san": "tlsSans"}
_FLAG_OF_KEY = {
    **{key: f"--{name.replace('_', '-')}" for name, key in _SCALARS.items()},
    **{key: f"--{name.replace('_', '-')}" for name, key in _LISTS.items()},
}


def fail(message: str, code: int = 1, details: list[str] | None = None) -> NoReturn:
    typer.echo(f"error: {message}", err=True)
    for line in details or []:
        typer.echo(f"  - {line}", err=True)
    raise typer.Exit(code)


def require_root(action: str) -> None:
    if os.geteuid() != 0:
        fail(
            f"llmos {action} changes the system (k3s, systemd units, /etc): run it as root "
            f"(sudo llmos {action} ...), or see what it would do with --dry-run"
        )


def _read_file(path: Path, explicit: bool) -> dict[str, Any]:
    if not path.exists():
        if explicit:
            fail(f"config file {path} does not exist", USAGE)
        return {}
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except (OSError, yaml.YAMLError) as exc:
        fail(f"config file {path} cannot be read as YAML: {exc}", USAGE)
    if not isinstance(data, dict):
        fail(f"config file {path} must hold a mapping of keys to values", USAGE)
    # dataDir, data-dir and data_dir are one key, as for llmos server; its own keys (the
    # file is the node's, shared with it) are passed over.
    keys = {_camel(str(key)): value for key, value in data.items()}
    return {k: v for k, v in keys.items() if k in INSTALL_KEYS or k not in SERVER_KEYS}


def _camel(key: str) -> str:
    head, *rest = re.split(r"[-_]", key)
    return head + "".join(part[:1].upper() + part[1:] for part in rest)


def _env_list(name: str) -> list[str] | None:
    value = os.environ.get(name)
    return [item.strip() for item in value.split(",") if item.strip()] if value else None


def _labels(items: list[str]) -> dict[str, str]:
    labels = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            fail(f"--label {item!r} must be KEY=VALUE, e.g. --label llmos.ai/gpu=true", USAGE)
        labels[key] = value
    return labels


def read_config(path: Path, explicit: bool, given: dict[str, Any]) -> tuple[InstallConfig, bool]:
    """The install config from file, env and flags; whether kubernetesVersion was set."""
    data = _read_file(path, explicit)
    for name, key in _SCALARS.items():
        if given.get(name) is not None:
            data[key] = given[name]
    for name, key in _LISTS.items():
        items = given.get(name) or _env_list(f"LLMOS_{key_env(key)}")
        if items:
            data[key] = _labels(items) if key == "labels" else items
    try:
        return InstallConfig.model_validate(data), "kubernetesVersion" in data
    except ValidationError as exc:
        problems = [_problem(error, path) for error in exc.errors(include_url=False)]
        if len(problems) == 1:
            fail(problems[0], USAGE)
        fail("the install config is not valid:", USAGE, problems)


def key_env(key: str) -> str:
    """``tlsSans`` -> ``TLS_SANS``."""
    return re.sub(r"(?<!^)(?=[A-Z])", "_", key).upper()


def _problem(error: Any, path: Path) -> str:
    message = str(error["msg"]).removeprefix("Value error, ")
    if not error["loc"]:
        return message
    key = str(error["loc"][0])
    if error["type"] == "extra_forbidden":
        known = ", ".join(sorted(f.alias or n for n, f in InstallConfig.model_fields.items()))
        return f"unknown config key {key!r} in {path}; known keys: {known}"
    flag = _FLAG_OF_KEY.get(key)
    where = f"{flag} / LLMOS_{key_env(key)} / config key {key}" if flag else f"config key {key}"
    field = ".".join(str(part) for part in error["loc"])
    got = f", got {error['input']!r}" if key != "token" else ""
    return f"{field} ({where}): {message}{got}"
