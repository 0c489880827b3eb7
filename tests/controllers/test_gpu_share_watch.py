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

from llmos._lib.errors import LLMOSError, Reason
from llmos.controllers.events import EVENTS, EventRecorder
from llmos.controllers.gpualloc import GPUPlacement
from llmos.controllers.gpudevices import GPUDevicePublisher
from llmos.controllers.gpushare import OVER_SHARE, GPUShareWatch, tolerance
from llmos.controllers.model_replica import replica_spec
from llmos.controllers.raynodes import node_label
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


def replica(name: str, shares: tuple[tuple[int, int], ...]) -> ReplicaSpec:
    """Replica 0 of the ModelService ``name``: a process that sleeps, holding ``shares``."""
    return ReplicaSpec(
        key=f"modelservices/default/{name}/0",
        command=SLEEP,
        wants_port=False,
        health=None,
        owner=("ModelService", "default", name),
        gpu_shares=shares,
        label="replica 0",
    )


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
                status = await runtime.ensure(replica(name, shares))
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
            pid = (await runtime.ensure(replica("chat", ((1, 8 * GiB),)))).pid
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


def test_a_store_that_fails_for_one_replica_does_not_repeat_anothers_warning(
    tmp_path: Path,
) -> None:
    async def main() -> list[list[str]]:
        store = await SqliteStore.open(tmp_path / "db")
        runtime = LocalRuntime(tmp_path / "state", tmp_path / "logs")
        await runtime.start()
        try:
            processes = []
            for name in ("first", "second"):
                await store.create(MODELSERVICES, modelservice(name))
                pid = (await runtime.ensure(replica(name, ((1, GiB),)))).pid
                assert pid is not None
                processes.append(GPUProcess(pid, 4 * GiB))
            publisher = GPUDevicePublisher(store, "node", FixtureGPUSource(reading({1: processes})))
            await publisher.refresh()
            real_get = store.get

            async def flaky_get(resource: str, namespace: str, name: str) -> Any:
                if name == "second":
                    raise LLMOSError("the store is busy", Reason.SERVICE_UNAVAILABLE)
                return await real_get(resource, namespace, name)

            store.get = flaky_get  # type: ignore[method-assign]
            watch = GPUShareWatch(store, runtime, publisher, EventRecorder(store, "test"))
            first_round = await watch.check()
            store.get = real_get  # type: ignore[method-assign]
            return [first_round, await watch.check()]
        finally:
            await runtime.stop()
            await store.close()

    first_round, second_round = asyncio.run(main())
    assert len(first_round) == 1  # the first's warning; the second's lookup failed
    assert len(second_round) == 1  # the second's, now; the first's is not said again


def test_ray_node_labels_and_tolerance() -> None:
    assert node_label("mlclusters/ns/ray/head") == "the head"
    assert node_label("mlclusters/ns/ray/gpu-2") == "worker gpu-2"
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
    assert {s.label for s in specs} == {"replica 0"}  # as its Events name it
