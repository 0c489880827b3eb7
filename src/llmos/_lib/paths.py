"""Where LLMOS keeps things: root gets system paths, other users XDG paths."""

from __future__ import annotations

import os
from pathlib import Path


def is_root() -> bool:
    return os.geteuid() == 0


def default_data_dir() -> Path:
    if is_root():
        return Path("/var/lib/llmos")
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "llmos"


def default_config_file() -> Path:
    if is_root():
        return Path("/etc/llmos/config.yaml")
    return user_config_dir() / "config.yaml"


def user_config_dir() -> Path:
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "llmos"
