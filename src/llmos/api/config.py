"""ServerConfig: every setting of ``llmos server``, from flags, env and file.

One model defines all three, as in k3s: the flag ``--data-dir``, the
environment variable ``LLMOS_DATA_DIR`` and the YAML key ``dataDir`` (or
``data-dir``) set the same field. Flags win over the environment, which wins
over the file (``/etc/llmos/config.yaml`` as root, else the user's config dir).
"""

from __future__ import annotations

import ipaddress
import json
import re
import socket
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import Field, field_validator
from pydantic.fields import FieldInfo
from pydantic_settings import (
    BaseSettings,
    NoDecode,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)

from llmos._lib.errors import LLMOSError, Reason
from llmos._lib.paths import default_config_file, default_data_dir
from llmos.install.config import InstallConfig


def snake(key: str) -> str:
    """``dataDir`` and ``data-dir`` both become ``data_dir``."""
    return re.sub(r"(?<!^)(?=[A-Z])", "_", key).replace("-", "_").lower()


def camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part.title() for part in rest)


class ConfigError(LLMOSError):
    """The configuration file or a setting is wrong."""


# ``llmos install`` reads the same file (as k3s's server and agent share theirs): each
# command takes its own keys from it and passes over the other's.
INSTALL_KEYS = frozenset(field.alias or name for name, field in InstallConfig.model_fields.items())


class YamlFileSource(PydanticBaseSettingsSource):
    """Reads the YAML config file; a key that neither ``llmos server`` nor ``llmos
    install`` knows is an error that names the file."""

    def __init__(self, settings_cls: type[BaseSettings], path: Path | None) -> None:
        super().__init__(settings_cls)
        self.path = path

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        return None, field_name, False  # pragma: no cover - __call__ does the work

    def __call__(self) -> dict[str, Any]:
        explicit = self.path is not None
        path = self.path or default_config_file()
        if not path.exists():
            if explicit:
                raise ConfigError(f"config file {path} does not exist", Reason.BAD_REQUEST)
            return {}
        try:
            data = yaml.safe_load(path.read_text()) or {}
        except yaml.YAMLError as exc:
            raise ConfigError(f"config file {path} is not valid YAML: {exc}") from exc
        if not isinstance(data, dict):
            raise ConfigError(f"config file {path} must hold a mapping of keys to values")
        fields = self.settings_cls.model_fields
        result: dict[str, Any] = {}
        for key, value in data.items():
            name = snake(str(key))
            if name not in fields or name == "config":
                if camel(name) in INSTALL_KEYS:
                    continue  # llmos install's, in the node's one config file
                known = ", ".join(sorted(camel(f) for f in fields if f != "config"))
                raise ConfigError(
                    f"config file {path}: unknown key {key!r}. Known keys: {known}",
                    Reason.BAD_REQUEST,
                )
            result[name] = value
        return result


def split_list(value: Any) -> Any:
    """Accept ``a,b``, a JSON list, or a YAML list alike."""
    if isinstance(value, str):
        text = value.strip()
        if text.startswith("["):
            return json.loads(text)
        return [item.strip() for item in text.split(",") if item.strip()]
    return value


class ServerConfig(BaseSettings):
    """Settings of ``llmos server`` (embedded mode)."""

    model_config = SettingsConfigDict(env_prefix="LLMOS_", extra="forbid")

    config: Path | None = Field(
        default=None, description="Config file to read (default /etc/llmos/config.yaml as root)."
    )
    port: int = Field(default=8443, ge=1, le=65535, description="HTTPS port of the API.")
    bind_address: str = Field(default="0.0.0.0", description="Address to listen on.")
    data_dir: Path = Field(
        default_factory=default_data_dir,
        description="Database, certificates, models, volumes and logs.",
    )
    tls_cert: Path | None = Field(default=None, description="Your own server certificate (PEM).")
    tls_key: Path | None = Field(default=None, description="The key of --tls-cert (PEM).")
    tls_ca: Path | None = Field(
        default=None,
        description="The CA bundle that signed --tls-cert; served at /v1-public/cacerts.",
    )
    tls_sans: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="Extra names and IPs for the generated certificate (comma-separated).",
    )
    node_name: str = Field(
        default_factory=lambda: socket.gethostname().lower(),
        description="Name of this node (default: the hostname).",
    )
    log_level: Literal["debug", "info", "warning", "error"] = Field(
        default="info", description="Log verbosity."
    )
    log_format: Literal["text", "json"] = Field(default="text", description="Log line format.")
    skip_preflight: bool = Field(
        default=False, description="Start even when preflight checks fail."
    )
    max_request_bytes: int = Field(
        default=3 * 1024 * 1024, ge=1024, description="Largest request body the API accepts."
    )
    serve_bundled_model: bool = Field(
        default=False,
        description="Make sure the bundled demo model (SmolLM2) is served, as llmos-public/smollm2.",
    )
    store: Literal["sqlite", "kube"] = Field(
        default="sqlite",
        description=(
            "Where objects live: sqlite (a database in the data dir) or kube (LLMOS's "
            "CRDs in the Kubernetes cluster of --kubeconfig; see docs/cluster.md)."
        ),
    )
    kubeconfig: Path | None = Field(
        default=None,
        description=(
            "Kubeconfig of the cluster for --store kube (default: the pod's service account "
            "in a pod, else /etc/llmos/kubeconfig.yaml)."
        ),
    )
    runtime: Literal["local", "kube"] | None = Field(
        default=None,
        description=(
            "What runs workloads: local (supervised processes on this machine) or kube "
            "(StatefulSets, Services, PVCs and RayClusters in the cluster; needs --store "
            "kube). Default: kube with --store kube, else local."
        ),
    )
    bootstrap_password: str | None = Field(
        default=None,
        min_length=12,
        description=(
            "The admin's first password, instead of a generated one (first start only; "
            "give it through the environment, not the command line). The installer's "
            "Deployment sets it from a Secret so every replica agrees."
        ),
    )
    cluster_token_file: Path | None = Field(
        default=None,
        description=(
            "File holding the cluster join token: joining nodes show it to "
            "/v1-cluster/cluster-info (see docs/cluster.md)."
        ),
    )
    watch_history_seconds: float = Field(
        default=300.0, ge=0, description="How long watch history is kept for resuming."
    )
    watch_compact_interval: float = Field(
        default=30.0, gt=0, description="How often old watch history is dropped, in seconds."
    )
    event_ttl_seconds: float = Field(
        default=3600.0,
        gt=0,
        description=(
            "How long an Event is kept after it last happened, in seconds (1 hour, as "
            "kube-apiserver's --event-ttl)."
        ),
    )
    event_sweep_interval: float = Field(
        default=60.0,
        gt=0,
        description=(
            "How often expired Events, Events of deleted objects and Events over "
            "--events-per-object are deleted, in seconds."
        ),
    )
    events_per_object: int = Field(
        default=100,
        ge=1,
        description="Most Events kept for one object: the newest; older ones are deleted.",
    )
    workload_sandbox: Literal["auto", "required", "off"] = Field(
        default="auto",
        description=(
            "Run workloads (notebooks, Ray nodes, model replicas) in a bubblewrap sandbox "
            "that hides the server's data and other workloads from them: auto (where "
            "bubblewrap works; elsewhere they run "
            "unsandboxed, and say so), required (never without it) or off (embedded mode)."
        ),
    )
    metrics_interval: float = Field(
        default=10.0,
        gt=0,
        description="Seconds between samples of the dashboard's metric history (an hour kept).",
    )
    gpu_fixture: Path | None = Field(
        default=None,
        description="Read GPUs from a recording (scripts/record-gpus.py) instead of NVML: "
        "for tests and demos.",
    )

    metrics_allow_from: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description=(
            "Addresses or networks (CIDR, comma-separated) that may scrape /metrics "
            "without a token, e.g. your Prometheus."
        ),
    )

    @field_validator("metrics_allow_from", mode="before")
    @classmethod
    def _networks(cls, value: Any) -> Any:
        items = split_list(value)
        for item in items or []:
            try:
                ipaddress.ip_network(item, strict=False)
            except ValueError as exc:
                raise ValueError(f"{item!r} is not an address or network (CIDR)") from exc
        return items

    @field_validator("cluster_token_file")
    @classmethod
    def _token_file(cls, value: Path | None) -> Path | None:
        if value is None:
            return None
        try:
            text = value.read_text().strip()
        except OSError as exc:
            raise ValueError(f"cannot read the cluster token file {value}: {exc.strerror}") from exc
        if len(text) < 16:
            raise ValueError(f"the cluster token in {value} must be at least 16 characters")
        return value

    @field_validator("tls_sans", mode="before")
    @classmethod
    def _split_list(cls, value: Any) -> Any:
        return split_list(value)

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        config_path = init_settings().get("config") or env_settings().get("config")
        path = Path(config_path) if config_path else None
        return (init_settings, env_settings, YamlFileSource(settings_cls, path))

    @property
    def db_path(self) -> Path:
        return self.data_dir / "llmos.db"

    @property
    def tls_dir(self) -> Path:
        return self.data_dir / "tls"


# The keys ``llmos server`` takes from the config file, as they are spelt there.
SERVER_KEYS = frozenset(camel(name) for name in ServerConfig.model_fields if name != "config")
