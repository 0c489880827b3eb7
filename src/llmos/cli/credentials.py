"""Where the CLI keeps the server URL, its CA and the session token (mode 0600)."""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass
from pathlib import Path

import yaml

from llmos._lib.paths import user_config_dir


@dataclass
class Credentials:
    server: str
    token: str
    user: str
    ca_file: str | None = None
    insecure: bool = False


def credentials_path() -> Path:
    return user_config_dir() / "credentials.yaml"


def ca_path() -> Path:
    return user_config_dir() / "ca.crt"


def _write_private(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(text)
    os.chmod(path, 0o600)


def save(creds: Credentials) -> Path:
    path = credentials_path()
    _write_private(path, yaml.safe_dump(asdict(creds), sort_keys=False))
    return path


def save_ca(pem: str) -> Path:
    path = ca_path()
    _write_private(path, pem)
    return path


def load() -> Credentials | None:
    path = credentials_path()
    if not path.exists():
        return None
    try:  # one damaged by hand, or cut short, is as good as none: `llmos login` again
        data = yaml.safe_load(path.read_text()) or {}
        return Credentials(**data)
    except (yaml.YAMLError, TypeError, UnicodeDecodeError):
        return None


def forget() -> None:
    path = credentials_path()
    if path.exists():
        path.unlink()
