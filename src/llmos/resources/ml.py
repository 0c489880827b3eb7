"""Kinds of ``ml.llmos.ai/v1``: model services, notebooks, Ray clusters, volumes.

Only the schemas live here; each kind's controller arrives with its capability.
"""

from __future__ import annotations

import math
import re
from decimal import Decimal
from typing import Any, ClassVar, Literal
from urllib.parse import urlsplit

from pydantic import Field, field_validator, model_validator

from llmos._lib.quantity import parse_quantity
from llmos.resources.meta import Resource, Status, Strict, as_sent, is_model_name

GROUP = "ml.llmos.ai"


# Fields' patterns, and what each asks for in words: a refusal says these, not the pattern.
HTTP_URL = r"^https?://[^/\s]+(/[^\s]*)?$"
ENV_NAME = r"^[A-Za-z_][A-Za-z0-9_]*$"
DNS_LABEL = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"
PATTERN_WORDS = {
    HTTP_URL: "an http or https URL like http://10.0.0.5:8000/v1",
    ENV_NAME: "a letter or '_', then letters, digits or '_' (like HF_HOME)",
    DNS_LABEL: "lower case letters, digits and '-', starting and ending with a letter or digit",
}


def _sent_quantity(value: Any, *, as_text: bool) -> Any:
    """A quantity as sent: text, or a JSON number (YAML's ``gpuMemory: 0.5`` or ``memory:
    1073741824``), which a text field keeps as its text; never a boolean or a list."""
    if isinstance(value, bool) or not isinstance(value, str | int | float | None):
        raise ValueError(f"must be a quantity like 500m, 2, 0.5 or 4Gi, not {as_sent(value)}")
    if as_text and isinstance(value, int | float):
        return format(Decimal(repr(value)), "f") if math.isfinite(value) else repr(value)
    return value


def _check_quantity(value: str | int | float | None) -> str | int | float | None:
    if value is not None and parse_quantity(value) <= 0:
        raise ValueError(f"must be more than 0, not {value!r}")  # it is a limit too
    return value


def _check_memory(value: str | None) -> str | None:
    if value is not None and parse_quantity(value) < 2**20:
        raise ValueError(f"must be at least 1Mi (it is a limit too), not {value!r}")
    return _check_quantity(value)  # type: ignore[return-value]


_PLAIN_NUMBER = re.compile(r"^\s*[0-9]+(\.[0-9]+)?\s*$")


def gpu_share(text: str) -> tuple[int | None, float | None]:
    """A ``gpuMemory`` above 0 as ``(bytes, None)`` for a size (at least 1Mi) or ``(None,
    fraction)`` for a plain number up to 1; ValueError for an ambiguous or too small one."""
    value = parse_quantity(text)
    if _PLAIN_NUMBER.match(text):
        if value > 1:
            raise ValueError(
                f"{text!r} is ambiguous: write a size with a unit like {text.strip()}Gi, "
                "or a fraction of one GPU from 0 to 1 like 0.5"
            )
        return None, float(value)
    if value < 2**20:
        raise ValueError(f"must be at least 1Mi of GPU memory, not {text!r}")
    return int(value), None


def _check_gpu_memory(value: str | None) -> str | None:
    if value is not None and _check_quantity(value) is not None:
        gpu_share(value)
    return value


def _check_endpoint(value: str | None) -> str | None:
    """A URL whose host and port parse (the pattern alone lets ``http://[::1`` through)."""
    if value is not None:
        try:
            url = urlsplit(value)
            url.port  # noqa: B018 - raises ValueError for a port that is no number or too big
        except ValueError as exc:
            raise ValueError(f"{value!r} is not a URL: {exc}") from exc
        if not url.hostname:
            raise ValueError(f"{value!r} has no host")
    return value


class ResourceRequirements(Strict):
    cpu: str | int | float | None = None
    memory: str | None = None
    gpu: int | None = Field(default=None, ge=0)
    # A share of one GPU: a memory size ("20Gi") or a fraction ("0.5").
    gpuMemory: str | None = None
    # Where GPU shares go: "binpack" onto the fullest GPU that fits, or "spread" (docs/gpus.md).
    gpuPlacement: Literal["binpack", "spread"] | None = None

    _sent_cpu = field_validator("cpu", mode="before")(
        classmethod(lambda cls, v: _sent_quantity(v, as_text=False))
    )
    _sent_text = field_validator("memory", "gpuMemory", mode="before")(
        classmethod(lambda cls, v: _sent_quantity(v, as_text=True))
    )
    _q_cpu = field_validator("cpu")(classmethod(lambda cls, v: _check_quantity(v)))
    _q_mem = field_validator("memory")(classmethod(lambda cls, v: _check_memory(v)))
    _q_gpumem = field_validator("gpuMemory")(classmethod(lambda cls, v: _check_gpu_memory(v)))


class VolumeMount(Strict):
    name: str = Field(min_length=1)
    mountPath: str | None = None
    readOnly: bool = False

    @field_validator("mountPath")
    @classmethod
    def _absolute(cls, path: str | None) -> str | None:
        if path is not None and (not path.startswith("/") or ".." in path.split("/")):
            raise ValueError(
                f"mountPath {path!r} must be an absolute path without '..', e.g. /data"
            )
        return path


# Set by LLMOS from spec.resources: a workload's env must not hand out GPUs it was not given.
RESERVED_ENV = frozenset({"CUDA_VISIBLE_DEVICES", "CUDA_DEVICE_ORDER", "NVIDIA_VISIBLE_DEVICES"})


class EnvVar(Strict):
    name: str = Field(min_length=1, pattern=ENV_NAME)
    value: str = ""

    @field_validator("name")
    @classmethod
    def _not_reserved(cls, name: str) -> str:
        if name in RESERVED_ENV:
            raise ValueError(
                f"{name} is set by LLMOS from the GPUs it gives the workload: "
                "ask for GPUs in spec.resources (gpu, gpuMemory) instead"
            )
        return name


# Set by LLMOS for a ModelService's engine: its key, which only the gateway holds
# (each engine's ``Engine.key_env``; engineArgs' --api-key would override it).
ENGINE_KEY_ENV = frozenset({"API_KEY", "VLLM_API_KEY", "LLMOS_ENGINE_KEY"})
_ENGINE_KEY_FLAGS = ("--api-key", "--api_key")


def _sets_engine_key(arg: str) -> bool:
    """``--api-key``, ``--api_key=...``, or an abbreviation argparse would take for one."""
    flag = arg.split("=", 1)[0]
    return flag.startswith("--api") and any(f.startswith(flag) for f in _ENGINE_KEY_FLAGS)


# A hub repository (org/name, or a name alone), and optionally ":file" inside it.
_REPO_ID = re.compile(
    r"^[A-Za-z0-9][A-Za-z0-9._-]{0,95}(/[A-Za-z0-9][A-Za-z0-9._-]{0,95})?(:[^\s:][^\s]*)?$"
)


def model_problem(spec: dict[str, Any]) -> str | None:
    """Why a ModelService's ``spec.model`` is nothing its source can fetch; None if it may be
    (caught on create, not at the download). A name for an endpoint, or a bundled one (which
    admission checks against the bundled list), passes."""
    model = str(spec.get("model") or "")
    registry = spec.get("modelRegistry") or "huggingface"
    if spec.get("endpoint") is not None or model.startswith("bundled:"):
        return None
    if registry == "local" or model.startswith(("/", "./", "~")):
        if not model.startswith(("/", "~/")):
            return (
                f"{model!r} is not an absolute path (the server's working folder is no place "
                "for models): write one like /models/llama.gguf"
            )
        return None
    if not _REPO_ID.match(model):
        return (
            f"{model!r} is not a {registry} repository: write org/name (letters, digits, '-', "
            "'_' and '.'), optionally :file for one file of it (org/name:model-q4.gguf); or "
            "an absolute path with modelRegistry: local"
        )
    return None


class ModelServiceSpec(Strict):
    model: str = Field(min_length=1)
    modelRegistry: Literal["huggingface", "modelscope", "local"] = "huggingface"
    # What clients send as "model" (default: metadata.name); API-key scopes name it too.
    servedModelName: str | None = None
    engine: Literal["vllm", "llama-cpp", "transformers", "auto"] = "auto"
    engineArgs: list[str] = Field(default_factory=list)
    replicas: int = Field(default=1, ge=0, le=64)
    resources: ResourceRequirements = Field(default_factory=ResourceRequirements)
    env: list[EnvVar] = Field(default_factory=list)
    volumes: list[VolumeMount] = Field(default_factory=list)
    hfTokenSecret: str | None = None
    # Serve nothing locally: route to an OpenAI-compatible server that already runs
    # (e.g. http://10.0.0.5:8000). ``model`` then only names what it serves.
    endpoint: str | None = Field(default=None, pattern=HTTP_URL)

    _endpoint = field_validator("endpoint")(classmethod(lambda cls, v: _check_endpoint(v)))

    @field_validator("servedModelName")
    @classmethod
    def _served_name(cls, name: str | None) -> str | None:
        if name is not None and not is_model_name(name):
            raise ValueError(
                f"{name!r} is not a model name clients can send: use up to 253 characters "
                "with no spaces, e.g. smollm2 or meta-llama/Llama-3.1-8B-Instruct"
            )
        return name

    @field_validator("env")
    @classmethod
    def _no_engine_key(cls, env: list[EnvVar]) -> list[EnvVar]:
        for var in env:
            if var.name in ENGINE_KEY_ENV:
                raise ValueError(
                    f"{var.name} is set by LLMOS: it is the engine's key, which only the "
                    "gateway holds; callers use LLMOS API keys instead"
                )
        return env

    @field_validator("engineArgs")
    @classmethod
    def _no_key_flag(cls, args: list[str]) -> list[str]:
        for arg in args:
            if _sets_engine_key(arg):
                raise ValueError(
                    f"{arg.split('=', 1)[0]} is set by LLMOS: each replica gets a key that only "
                    "the gateway holds; callers use LLMOS API keys instead"
                )
        return args


class ModelServiceStatus(Status):
    readyReplicas: int = 0
    replicas: int = 0
    endpoints: list[str] = Field(default_factory=list)
    downloadProgress: dict[str, Any] | None = None
    engine: str | None = None
    # GPU memory one replica is expected to need (weights + KV cache + overhead), e.g. "1638Mi".
    gpuMemoryEstimate: str | None = None


class ModelService(Resource):
    group: ClassVar[str] = GROUP
    plural: ClassVar[str] = "modelservices"
    short_names: ClassVar[tuple[str, ...]] = ("ms",)
    label_names: ClassVar[bool] = True
    spec: ModelServiceSpec
    status: ModelServiceStatus = Field(default_factory=ModelServiceStatus)


class NotebookSpec(Strict):
    type: Literal["jupyter", "vscode", "rstudio"] = "jupyter"
    resources: ResourceRequirements = Field(default_factory=ResourceRequirements)
    volumes: list[VolumeMount] = Field(default_factory=list)
    env: list[EnvVar] = Field(default_factory=list)
    # Stop after this long without use (fractions allowed); the next visit starts it again.
    idleTimeoutMinutes: float | None = Field(default=None, gt=0, le=366 * 24 * 60)
    stopped: bool = False


class NotebookStatus(Status):
    # Where users open it: https://HOST:8443/notebooks/{namespace}/{name}/
    url: str | None = None
    lastActivityTime: str | None = None
    workingDir: str | None = None
    # Cluster mode: where the proxy reaches its ready pod (http://POD_IP:8888); None otherwise.
    endpoint: str | None = None


class Notebook(Resource):
    group: ClassVar[str] = GROUP
    plural: ClassVar[str] = "notebooks"
    short_names: ClassVar[tuple[str, ...]] = ("nb",)
    label_names: ClassVar[bool] = True
    spec: NotebookSpec = Field(default_factory=NotebookSpec)
    status: NotebookStatus = Field(default_factory=NotebookStatus)


class RayHeadSpec(Strict):
    resources: ResourceRequirements = Field(default_factory=ResourceRequirements)


class RayWorkerGroup(Strict):
    name: str = Field(min_length=1, max_length=40, pattern=DNS_LABEL)
    replicas: int = Field(default=1, ge=0, le=32)
    # Autoscaling bounds: idle for spec.idleTimeoutSeconds shrinks the group to
    # minReplicas; work that waits for resources grows it, up to maxReplicas
    # (default: replicas, i.e. never above what was asked for).
    minReplicas: int = Field(default=0, ge=0)
    maxReplicas: int | None = Field(default=None, ge=0, le=32)
    resources: ResourceRequirements = Field(default_factory=ResourceRequirements)

    @model_validator(mode="after")
    def _bounds(self) -> RayWorkerGroup:
        if self.minReplicas > self.replicas:
            raise ValueError(
                f"minReplicas {self.minReplicas} is above replicas {self.replicas}: "
                "lower minReplicas or raise replicas"
            )
        if self.maxReplicas is not None and self.maxReplicas < self.replicas:
            raise ValueError(
                f"maxReplicas {self.maxReplicas} is below replicas {self.replicas}: "
                "raise maxReplicas (or leave it out)"
            )
        return self


class MLClusterSpec(Strict):
    # The Ray version the cluster expects; checked against the one installed on the node.
    rayVersion: str | None = None
    head: RayHeadSpec = Field(default_factory=RayHeadSpec)
    workerGroups: list[RayWorkerGroup] = Field(default_factory=list)
    idleTimeoutSeconds: int | None = Field(default=None, ge=1, le=366 * 24 * 3600)
    volumes: list[VolumeMount] = Field(default_factory=list)

    @field_validator("workerGroups")
    @classmethod
    def _unique_groups(cls, groups: list[RayWorkerGroup]) -> list[RayWorkerGroup]:
        names = [g.name for g in groups]
        twice = sorted({n for n in names if names.count(n) > 1})
        if twice:
            raise ValueError(f"worker group names must be unique: {', '.join(twice)} repeats")
        return groups


class RayNodeStatus(Strict):
    # "head", or "<group>-<index>" for a worker.
    name: str
    ip: str | None = None
    # Starting, Ready, CrashLoop... (the process), then ALIVE or DEAD as Ray sees it.
    phase: str
    rayState: str | None = None


class RayWorkerGroupStatus(Strict):
    name: str
    # Workers the autoscaler wants now (spec.replicas unless it scaled the group).
    desiredReplicas: int = 0
    readyReplicas: int = 0


class MLClusterStatus(Status):
    # Where users open the Ray dashboard (and where the Jobs API answers):
    # https://HOST:8443/mlclusters/{namespace}/{name}/dashboard/
    dashboardUrl: str | None = None
    rayVersion: str | None = None
    nodes: list[RayNodeStatus] = Field(default_factory=list)
    workerGroups: list[RayWorkerGroupStatus] = Field(default_factory=list)
    # Ray's resources over all nodes, e.g. {"CPU": 2.0, "memory": 3.4e10}.
    totalResources: dict[str, float] = Field(default_factory=dict)
    availableResources: dict[str, float] = Field(default_factory=dict)
    # Last time the cluster ran a job or used resources (for idleTimeoutSeconds).
    lastActivityTime: str | None = None
    workingDir: str | None = None


class MLCluster(Resource):
    group: ClassVar[str] = GROUP
    plural: ClassVar[str] = "mlclusters"
    short_names: ClassVar[tuple[str, ...]] = ("mlc",)
    label_names: ClassVar[bool] = True
    spec: MLClusterSpec = Field(default_factory=MLClusterSpec)
    status: MLClusterStatus = Field(default_factory=MLClusterStatus)


class VolumeSpec(Strict):
    capacity: str = "10Gi"
    accessMode: Literal["ReadWriteOnce", "ReadWriteMany"] = "ReadWriteOnce"
    # Restore: the new volume starts as a copy of this VolumeSnapshot (same namespace).
    fromSnapshot: str | None = None

    _sent = field_validator("capacity", mode="before")(
        classmethod(lambda cls, v: _sent_quantity(v, as_text=True))
    )
    _q_capacity = field_validator("capacity")(classmethod(lambda cls, v: _check_quantity(v)))


class VolumeStatus(Status):
    usage: str | None = None
    capacity: str | None = None
    # Embedded mode: the directory that holds the volume's files.
    path: str | None = None
    # Workloads that mount it, as "Kind/name".
    usedBy: list[str] = Field(default_factory=list)


class Volume(Resource):
    group: ClassVar[str] = GROUP
    plural: ClassVar[str] = "volumes"
    short_names: ClassVar[tuple[str, ...]] = ("vol",)
    # A label value in cluster mode (its PVC's llmos.ai/name), as workloads' names are.
    label_names: ClassVar[bool] = True
    spec: VolumeSpec = Field(default_factory=VolumeSpec)
    status: VolumeStatus = Field(default_factory=VolumeStatus)


class VolumeSnapshotSpec(Strict):
    # The Volume (same namespace) to copy, as it is when the snapshot is taken.
    volumeName: str = Field(min_length=1)


class VolumeSnapshotStatus(Status):
    readyToUse: bool = False
    size: str | None = None
    takenAt: str | None = None


class VolumeSnapshot(Resource):
    group: ClassVar[str] = GROUP
    plural: ClassVar[str] = "volumesnapshots"
    short_names: ClassVar[tuple[str, ...]] = ("vs",)
    spec: VolumeSnapshotSpec
    status: VolumeSnapshotStatus = Field(default_factory=VolumeSnapshotStatus)
