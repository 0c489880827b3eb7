"""What one ModelService replica runs: its key, its engine's context on the GPUs it was
placed on, what the sandbox shows it of its model, and the ReplicaSpec the runtime keeps
running (command, environment, working directory, health check, limits)."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

from llmos._lib.errors import Reason
from llmos.controllers.gpualloc import GPUPlacement
from llmos.controllers.isolation import Isolation
from llmos.controllers.raytemp import default_root
from llmos.controllers.volume import Mounted, by_access, workload_env
from llmos.engines.base import Engine, EngineContext, EngineError, ModelFiles, model_folders
from llmos.engines.sources import ModelRef, parse
from llmos.gpu.estimate import MemoryEstimate
from llmos.runtime.base import HealthCheck, Limits, ReplicaSpec
from llmos.runtime.local.sandbox import Confinement


def replica_prefix(namespace: str, name: str) -> str:
    """What the keys of one ModelService's replicas start with."""
    return f"modelservices/{namespace}/{name}/"


def replica_key(namespace: str, name: str, index: int) -> str:
    return f"{replica_prefix(namespace, name)}{index}"


def model_ref(ms: dict[str, Any]) -> ModelRef:
    return parse(ms["spec"]["model"], ms["spec"].get("modelRegistry", "huggingface"))


def placed_context(
    ctx: EngineContext, placed: GPUPlacement | None, estimate: MemoryEstimate
) -> EngineContext:
    """``ctx`` for one replica: its GPUs, and its share as the engine's memory limit."""
    if placed is None:
        return dataclasses.replace(ctx, gpus=())
    return dataclasses.replace(
        ctx,
        gpus=placed.gpus,
        gpu_memory_fraction=placed.fraction,
        gpu_layers=None if placed.whole else estimate.offload_layers(placed.memory_bytes),
    )


def shown_folders(
    isolation: Isolation | None,
    data_dir: Path,
    cache_dir: Path,
    namespace: str,
    engine: Engine,
    files: ModelFiles,
) -> tuple[Path, ...]:
    """What the sandbox shows of the model, read-only; an EngineError for a model it must
    not show (a local path is anyone's choice): one in the data dir other than in the
    download cache or in a Volume of the ModelService's namespace (whose whole folder is
    shown then, a path the server made: a link in it would be followed again at each
    start) or in an MLCluster's Ray temp dir, or one its user cannot read."""
    folders = model_folders(files)
    if isolation is None or not engine.sandboxed or not isolation.active:
        return folders
    data = data_dir.absolute()
    volumes = data / "volumes" / namespace
    shown = []
    for folder in folders:
        if folder.is_relative_to(cache_dir.absolute()):
            shown.append(folder)
        elif folder.is_relative_to(volumes) and folder != volumes:
            shown.append(volumes / folder.relative_to(volumes).parts[0])
        elif folder.is_relative_to(data) or folder.is_relative_to(default_root()):
            raise EngineError(
                f"spec.model: {files.path} is among the server's data or other workloads' "
                f"files, which a sandboxed engine may not read: put the model in a Volume "
                f"of namespace {namespace!r}, or outside {data}",
                Reason.INVALID,
            )
        else:
            shown.append(folder)
    sandbox = isolation.sandbox
    unreadable = sandbox.unreadable(files.path) if sandbox is not None else None
    if unreadable is not None:
        raise EngineError(
            f"spec.model: the sandbox's user (nobody: the server runs as root) cannot read "
            f"{unreadable}: make the model readable by all (chmod -R a+rX {files.path})",
            Reason.INVALID,
        )
    return tuple(shown)


def replica_spec(
    ms: dict[str, Any],
    engine: Engine,
    ctx: EngineContext,
    index: int,
    mounted: list[Mounted],
    *,
    isolation: Isolation | None = None,
    token: str | None = None,
    shown: tuple[Path, ...] = (),
    placed: GPUPlacement | None = None,
) -> ReplicaSpec:
    """Replica ``index`` of ``ms``, served by ``engine`` with ``ctx``, in the sandbox when
    ``isolation`` is given and the engine runs there."""
    meta = ms["metadata"]
    # The engine's key last: nothing in spec.env replaces it.
    env = {**engine.env(ctx), **workload_env(mounted, ms["spec"].get("env")), **engine.key(ctx)}
    if token and model_ref(ms).source == "huggingface":
        env["HF_TOKEN"] = token
    command = engine.command(ctx)
    if isolation is not None and engine.sandboxed:
        # It reads its model and its read-only volumes, and writes its other volumes.
        writable, readable = by_access(mounted)
        confinement = Confinement(
            writable,
            (*shown, *readable),
            gpus=bool(ctx.gpus),
            cwd=mounted[0].path if mounted else None,
        )
        command = isolation.command(command, confinement)
    return ReplicaSpec(
        key=replica_key(meta["namespace"], meta["name"], index),
        command=command,
        env=tuple(sorted(env.items())),
        cwd=mounted[0].path if mounted else None,
        health=HealthCheck(
            path=engine.health.path,
            startup_timeout_seconds=engine.health.startup_timeout_seconds,
        ),
        owner=("ModelService", meta["namespace"], meta["name"]),
        limits=Limits.of(ms["spec"].get("resources")),
        gpu_shares=placed.shares if placed is not None else (),
        label=f"replica {index}",
    )
