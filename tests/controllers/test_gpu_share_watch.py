"""The GPU share watch: a replica past its share of a shared GPU gets one Warning Event.

Real replica processes under the local runtime; the GPU reading is a recording in the
fixture format whose per-process readings name the pids of those processes (a real GPU
would report them itself), as in tests/api/test_workload_metrics.py.
"""

from __future__ import annotations

import asyncio
import dataclasses
import sys
from pathlib import Path
from typing import Any

from llmos.controllers.events import EVENTS, EventRecorder
from llmos.controllers.gpualloc import GPUPlacement
from llmos.controllers.gpudevices import GPUDevicePublisher
from llmos.controllers.gpushare import OVER_SHARE, GPUShareWatch, label, tolerance
from llmos.controllers.model_replica import replica_spec
from llmos.engines.base import EngineContext, ModelFiles
from llmos.engines.llama_cpp import LlamaCppEngine
from llmos.gpu.inventory import GPUProcess, Recording, TimedReading
from llmos.gpu.scheduler import Assignment
from llmos.gpu.source import FixtureGPUSource, load_recording
from llmos.runtime.base import ReplicaSpec
from llmos.runtime.local import LocalRuntime
from llmos.store.sqlite.store import SqliteStore

sys.path.insert(0, str(Path(__file__).parent.parent))
from gpu.helpers import MIXED

GiB = 2**30
MODELSERVICES = "modelservices.ml.llmos.ai"
SLEEP = (sys.executable, "-c", "import time; time.sleep(600)")


def reading(processes: dict[int, list[GPUProcess]]) -> Recording:
    recording = load_recording(MIXED)
    first = recording.readings[0]
    gpus = tuple(
        dataclasses.replace(r, processes=tuple(processes.get(i, ())))
        for i, r in enumerate(first.gpus)
    )
    return dataclasses.replace(recording, readings=(TimedReading(first.at, gpus),))


def modelservice(name: str) -> dict[str, Any]:
    return {
        "apiVersion": "ml.llmos.ai/v1",
        "kind": "ModelService",
        "metadata": {"name": name, "namespace": "default"},
        "spec": {"model": "bundled:smollm2", "replicas": 1},
        "status": {},
    }


def test_a_replica_past_its_share_gets_one_warning_per_episode(tmp_path: Path) -> None:
    async def main() -> list[list[Any]]:
        store = await SqliteStore.open(tmp_path / "db")
        runtime = LocalRuntime(tmp_path / "state", tmp_path / "logs")
        await runtime.start()
        try:
            for name in ("greedy", "modest", "whole"):
                await store.create(MODELSERVICES, modelservice(name))
            pids = {}
            for name, shares in (
                ("greedy", ((2, 4 * GiB),)),
                ("modest", ((2, 4 * GiB),)),
                ("whole", ()),  # a whole GPU is all its own: never over
            ):
                spec = ReplicaSpec(
                    key=f"modelservices/default/{name}/0",
                    command=SLEEP,
                    wants_port=False,
                    health=None,
                    owner=("ModelService", "default", name),
                    gpu_shares=shares,
                )
                status = await runtime.ensure(spec)
                assert status.pid is not None
                pids[name] = status.pid
            source = FixtureGPUSource(
                reading(
                    {
                        0: [GPUProcess(pids["whole"], 39 * GiB)],
                        # Over 4 GiB by 1.5 GiB, past the 512 MiB slack; the other within it.
                        2: [
                            GPUProcess(pids["greedy"], int(5.5 * GiB)),
                            GPUProcess(pids["modest"], 4 * GiB + 400 * 2**20),
                        ],
                    }
                )
            )
            publisher = GPUDevicePublisher(store, "node", source)
            await publisher.refresh()
            watch = GPUShareWatch(store, runtime, publisher, EventRecorder(store, "test"))
            said = [await watch.check(), await watch.check()]  # the second: still over
            events = (await store.list(EVENTS, "default")).items
            return [
                *said,
                [
                    (e["spec"]["reason"], e["spec"]["type"], e["spec"]["involvedObject"]["name"])
                    for e in events
                ],
            ]
        finally:
            await runtime.stop()
            await store.close()

    first, second, reasons = asyncio.run(main())
    assert first == [
        "replica 0 uses 5.5 GiB of GPU 2, over its share of 4 GiB: the workloads that share "
        "the GPU may run out of memory. Ask for more (resources.gpuMemory), or hold the "
        "engine to less"
    ]
    assert second == []  # once per episode, not at each pass
    assert reasons == [(OVER_SHARE, "Warning", "greedy")]


def test_back_under_its_share_a_replica_is_warned_again_when_it_passes_it_again(
    tmp_path: Path,
) -> None:
    async def main() -> list[int]:
        store = await SqliteStore.open(tmp_path / "db")
        runtime = LocalRuntime(tmp_path / "state", tmp_path / "logs")
        await runtime.start()
        try:
            await store.create(MODELSERVICES, modelservice("chat"))
            spec = ReplicaSpec(
                key="modelservices/default/chat/0",
                command=SLEEP,
                wants_port=False,
                health=None,
                owner=("ModelService", "default", "chat"),
                gpu_shares=((1, 8 * GiB),),
            )
            pid = (await runtime.ensure(spec)).pid
            assert pid is not None
            over, under = (
                FixtureGPUSource(reading({1: [GPUProcess(pid, used)]}))
                for used in (10 * GiB, 6 * GiB)
            )
            publisher = GPUDevicePublisher(store, "node", over)
            watch = GPUShareWatch(store, runtime, publisher, EventRecorder(store, "test"))
            counts = []
            for source in (over, under, over):
                publisher.source = source
                await publisher.refresh()
                counts.append(len(await watch.check()))
            return counts
        finally:
            await runtime.stop()
            await store.close()

    assert asyncio.run(main()) == [1, 0, 1]


def test_labels_and_tolerance() -> None:
    assert label("modelservices/ns/chat/1") == "replica 1"
    assert label("notebooks/ns/lab/0") == "the notebook"
    assert label("mlclusters/ns/ray/head") == "the head"
    assert label("mlclusters/ns/ray/gpu-2") == "worker gpu-2"
    assert tolerance(GiB) == 512 * 2**20  # a CUDA context's worth at least
    assert tolerance(40 * GiB) == 4 * GiB


def test_a_modelservice_replica_carries_its_share_and_a_whole_gpu_none() -> None:
    shared = GPUPlacement((Assignment(2, "node-gpu2", GiB, 24 * GiB, whole=False),))
    whole = GPUPlacement((Assignment(0, "node-gpu0", 40 * GiB, 40 * GiB, whole=True),))
    model = ModelFiles(Path("/models/smol.gguf"), "gguf", 100 * 2**20)
    ctx = EngineContext(model, "smol")
    specs = [
        replica_spec(modelservice("smol"), LlamaCppEngine(), ctx, 0, [], placed=placed)
        for placed in (shared, whole, None)
    ]
    assert [s.gpu_shares for s in specs] == [((2, GiB),), (), ()]
