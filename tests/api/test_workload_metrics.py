"""Per-workload series: CPU, RSS and GPU memory of real replica processes.

The GPU memory comes from NVML's compute processes; here from a recording in the
fixture format whose per-process readings name the pids of the processes this
test started (a real GPU would report them itself).
"""

from __future__ import annotations

import asyncio
import dataclasses
import sys
from pathlib import Path

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from llmos.api.collectors import WorkloadCollector
from llmos.controllers.gpudevices import GPUDevicePublisher
from llmos.gpu.inventory import GPUProcess, Recording, TimedReading
from llmos.gpu.source import FixtureGPUSource, load_recording
from llmos.runtime.base import Phase, ReplicaSpec, ReplicaStatus
from llmos.runtime.local import LocalRuntime
from llmos.store.sqlite.store import SqliteStore

sys.path.insert(0, str(Path(__file__).parent.parent))
from gpu.helpers import MIXED

KEY = "notebooks/team/lab/0"
# A replica whose child holds GPU memory too: the series sums the process tree per GPU.
PARENT = (
    "import subprocess, sys, time\n"
    "child = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(600)'])\n"
    "print(child.pid, flush=True)\n"
    "time.sleep(600)\n"
)


def with_processes(recording: Recording, processes: dict[int, list[GPUProcess]]) -> Recording:
    first = recording.readings[0]
    gpus = tuple(
        dataclasses.replace(r, processes=tuple(processes.get(i, ())))
        for i, r in enumerate(first.gpus)
    )
    return dataclasses.replace(recording, readings=(TimedReading(first.at, gpus),))


def test_gpu_memory_cpu_and_rss_per_replica(tmp_path: Path) -> None:
    async def main() -> str:
        store = await SqliteStore.open(tmp_path / "db")
        runtime = LocalRuntime(tmp_path / "state", tmp_path / "logs")
        await runtime.start()
        try:
            spec = ReplicaSpec(
                key=KEY,
                command=(sys.executable, "-c", PARENT),
                wants_port=False,
                health=None,
                owner=("Notebook", "team", "lab"),
                gpu_shares=((0, 6 * 2**30),),
            )
            status = await runtime.ensure(spec)
            assert status.pid is not None
            async with asyncio.timeout(30):
                lines = runtime.logs(KEY, follow=True)
                child = int(await anext(lines))
                await lines.aclose()
            recording = with_processes(
                load_recording(MIXED),
                {
                    0: [GPUProcess(status.pid, 3 * 2**30), GPUProcess(child, 2**30)],
                    2: [GPUProcess(child, 512 * 2**20), GPUProcess(999_999_999, 2**30)],
                },
            )
            publisher = GPUDevicePublisher(store, "node", FixtureGPUSource(recording))
            await publisher.refresh()
            registry = CollectorRegistry()
            registry.register(WorkloadCollector(runtime, publisher))
            return generate_latest(registry).decode()
        finally:
            await runtime.stop()
            await store.close()

    text = asyncio.run(main())
    samples = {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }
    labels = {"kind": "Notebook", "namespace": "team", "name": "lab", "replica": "0"}

    def value(name: str, **extra: str) -> float:
        return samples[(name, tuple(sorted({**labels, **extra}.items())))]

    assert value("llmos_workload_gpu_memory_bytes", gpu="0") == 4 * 2**30
    assert value("llmos_workload_gpu_memory_bytes", gpu="2") == 512 * 2**20
    gpu_series = [k for k in samples if k[0] == "llmos_workload_gpu_memory_bytes"]
    assert len(gpu_series) == 2  # not GPU 1, and not the stranger's pid
    # What it may use of GPU 0, beside what it does use: an alert can compare the two.
    shares = {k: v for k, v in samples.items() if k[0] == "llmos_workload_gpu_memory_share_bytes"}
    assert list(shares.values()) == [6 * 2**30]
    assert value("llmos_workload_gpu_memory_share_bytes", gpu="0") == 6 * 2**30
    assert value("llmos_workload_resident_memory_bytes") > 2**20
    assert value("llmos_workload_cpu_seconds_total") >= 0
    assert value("llmos_workload_up") == 1


class Replicas:
    """The runtime's view of replicas, as the collector asks it: keys and statuses."""

    def __init__(self, *statuses: ReplicaStatus) -> None:
        self.statuses = {s.key: s for s in statuses}

    def keys(self, prefix: str = "") -> list[str]:
        return [k for k in self.statuses if k.startswith(prefix)]

    def status(self, key: str) -> ReplicaStatus | None:
        return self.statuses.get(key)

    def spec(self, key: str) -> ReplicaSpec | None:
        return None


def test_oom_kills_count_its_exits_and_the_processes_it_lived_without() -> None:
    registry = CollectorRegistry()
    lost = ReplicaStatus(KEY, Phase.READY, True, restarts=2, oom_kills=1, oom_exits=2)
    fine = ReplicaStatus("notebooks/team/other/0", Phase.READY, True)
    registry.register(WorkloadCollector(Replicas(lost, fine)))  # type: ignore[arg-type]
    text = generate_latest(registry).decode()
    assert (
        'llmos_workload_oom_kills_total{kind="Notebook",name="lab",namespace="team",'
        'replica="0"} 3.0' in text
    )
    assert 'llmos_workload_oom_kills_total{kind="Notebook",name="other"' in text
