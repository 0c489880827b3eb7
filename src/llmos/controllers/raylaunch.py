"""How an MLCluster's Ray node is launched: its environment, its command line (in the
sandbox when there is one) and the runtime's :class:`ReplicaSpec` for it.

The head is ``ray start --head``, a worker ``ray start --address HEAD`` (both built by
:mod:`llmos.controllers.raynodes`). Each carries the cluster's Ray token, its volumes
and the GPUs it was placed on (or none); a worker also the head's pid, so that a new
head, a new Ray cluster, starts its workers again to join it.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from llmos.controllers.gpualloc import GPUPlacement
from llmos.controllers.gpuplacement import CPU_ONLY
from llmos.controllers.isolation import Isolation
from llmos.controllers.raynodes import Slot, head_command, node_env, node_spec, worker_command
from llmos.runtime.base import ReplicaSpec
from llmos.runtime.local.sandbox import Confinement

__all__ = ["RayLauncher", "Where"]


def _on_gpus(resources: dict[str, Any], placed: GPUPlacement | None) -> dict[str, Any]:
    """The node's resources as Ray is told them: as many GPUs as it was given."""
    return resources if placed is None else {**resources, "gpu": len(placed.gpus)}


@dataclass(frozen=True)
class Where:
    """What a cluster's nodes share: sandbox, Ray's temp dir and the volumes' variables."""

    confinement: Confinement
    temp: Path
    volumes: dict[str, str]


@dataclass(frozen=True)
class RayLauncher:
    isolation: Isolation
    token: Callable[[str], str]  # a cluster's uid -> its Ray token
    home: Callable[[str, str], Path]  # (namespace, name) -> the cluster's home

    def head(
        self,
        key: str,
        cluster: dict[str, Any],
        slot: Slot,
        where: Where,
        placed: GPUPlacement | None,
    ) -> ReplicaSpec:
        resources = _on_gpus((cluster["spec"].get("head") or {}).get("resources") or {}, placed)
        command = head_command(slot, where.temp, resources)
        return self._spec(key, command, cluster, slot, where, resources, placed, {})

    def worker(
        self,
        key: str,
        cluster: dict[str, Any],
        group: dict[str, Any],
        slot: Slot,
        head: tuple[Slot, int],
        where: Where,
        placed: GPUPlacement | None,
    ) -> ReplicaSpec:
        """Worker ``key`` of ``group``, joining the head on ``head`` (its slot and pid)."""
        head_slot, head_pid = head
        resources = _on_gpus(group.get("resources") or {}, placed)
        command = worker_command(slot, head_slot, where.temp, resources)
        # A new head is a new Ray cluster: its workers start again to join it.
        joins = {"LLMOS_RAY_HEAD_PID": str(head_pid)}
        return self._spec(key, command, cluster, slot, where, resources, placed, joins)

    def _spec(
        self,
        key: str,
        command: list[str],
        cluster: dict[str, Any],
        slot: Slot,
        where: Where,
        resources: dict[str, Any],
        placed: GPUPlacement | None,
        more_env: dict[str, str],
    ) -> ReplicaSpec:
        meta = cluster["metadata"]
        env = {**node_env(self.token(meta["uid"]), int(resources.get("gpu") or 0)), **where.volumes}
        env.update(CPU_ONLY if placed is None else placed.env())
        if self.isolation.active:
            # The server's home is hidden in the sandbox: the cluster's own persists.
            env["HOME"] = str(self.home(meta["namespace"], meta["name"]))
        env.update(more_env)
        confinement = dataclasses.replace(where.confinement, gpus=placed is not None)
        confined = list(self.isolation.command(command, confinement))
        cwd = where.confinement.cwd or where.temp
        return node_spec(key, confined, slot, env, cwd, cluster, resources, placed)
