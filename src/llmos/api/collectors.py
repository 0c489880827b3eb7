"""Prometheus collectors read at scrape time: the node, each workload, and the controllers.

Gateway series (requests, latency, time to first token, tokens) are counted
as requests happen (``llmos.gateway.usage``); these are read when ``/metrics``
is scraped, so an idle server spends nothing on them between scrapes.

- node: ``llmos_node_cpu_utilization_ratio``, ``llmos_node_cpu_cores``,
  ``llmos_node_memory_{used,total}_bytes``, ``llmos_node_disk_{used,total}_bytes``
  (the data dir's filesystem);
- workloads (every replica the runtime supervises, with its child processes):
  ``llmos_workload_cpu_seconds_total``, ``llmos_workload_resident_memory_bytes``,
  ``llmos_workload_up``, ``llmos_workload_restarts_total``,
  ``llmos_workload_oom_kills_total``, labelled by
  ``kind``, ``namespace``, ``name`` and ``replica``; and
  ``llmos_workload_gpu_memory_bytes`` with ``gpu`` too: the GPU memory NVML
  reports for the replica's processes (its compute processes, matched by pid),
  from the latest GPU reading, and ``llmos_workload_gpu_memory_share_bytes``,
  what it may use of a GPU it shares;
- controllers: ``llmos_controller_queue_depth``,
  ``llmos_controller_reconciles_total``, ``llmos_controller_reconcile_errors_total``;
- GPUs: ``llmos_gpu_utilization_ratio``, ``llmos_gpu_memory_{used,total}_bytes``,
  ``llmos_gpu_temperature_celsius``, ``llmos_gpu_power_watts``,
  ``llmos_gpu_ecc_errors_total``, ``llmos_gpu_healthy``, labelled by ``gpu``
  (index), ``uuid`` and ``model``.
"""

from __future__ import annotations

import os
import shutil
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path

import psutil
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from llmos.controllers.gpudevices import GPUDevicePublisher, device_name
from llmos.controllers.loop import Manager
from llmos.controllers.nodealloc import NodeAllocator
from llmos.gateway.history import Sampler
from llmos.runtime.base import Runtime
from llmos.runtime.proctable import ProcessTable, process_table

WORKLOAD_LABELS = ["kind", "namespace", "name", "replica"]
KINDS = {"modelservices": "ModelService", "notebooks": "Notebook", "mlclusters": "MLCluster"}


class NodeCollector(Collector):
    def __init__(self, data_dir: Path, reservations: NodeAllocator | None = None) -> None:
        self.data_dir = data_dir
        self.reservations = reservations
        psutil.cpu_percent(interval=None)  # the first reading is since this call

    def collect(self) -> Iterator[Metric]:
        cpu = GaugeMetricFamily(
            "llmos_node_cpu_utilization_ratio", "CPU in use since the last scrape, 0 to 1."
        )
        cpu.add_metric([], psutil.cpu_percent(interval=None) / 100)
        yield cpu
        cores = GaugeMetricFamily("llmos_node_cpu_cores", "Logical CPUs of the node.")
        cores.add_metric([], float(os.cpu_count() or 1))
        yield cores
        memory = psutil.virtual_memory()
        yield _gauge("llmos_node_memory_used_bytes", "Memory in use.", memory.used)
        yield _gauge("llmos_node_memory_total_bytes", "Memory of the node.", memory.total)
        disk = shutil.disk_usage(self.data_dir)
        yield _gauge("llmos_node_disk_used_bytes", "Used space on the data dir's disk.", disk.used)
        yield _gauge("llmos_node_disk_total_bytes", "Size of the data dir's disk.", disk.total)
        if self.reservations is not None:
            reserved = self.reservations.reserved
            yield _gauge(
                "llmos_node_cpu_reserved_cores",
                "CPUs the workloads' replicas reserve (resources.cpu).",
                reserved.cpu,
            )
            yield _gauge(
                "llmos_node_memory_reserved_bytes",
                "Memory the workloads' replicas reserve (resources.memory).",
                reserved.memory,
            )


def _gauge(name: str, documentation: str, value: float) -> GaugeMetricFamily:
    family = GaugeMetricFamily(name, documentation)
    family.add_metric([], float(value))
    return family


def _labels(key: str) -> list[str]:
    """``modelservices/ns/name/0`` -> [ModelService, ns, name, 0]."""
    parts = key.split("/")
    kind = KINDS.get(parts[0], parts[0])
    return [kind, *parts[1:3], parts[3] if len(parts) > 3 else "0"]


class WorkloadCollector(Collector):
    def __init__(self, runtime: Runtime, gpus: GPUDevicePublisher | None = None) -> None:
        self.runtime = runtime
        self.gpus = gpus

    def collect(self) -> Iterator[Metric]:
        cpu = CounterMetricFamily(
            "llmos_workload_cpu_seconds",
            "CPU time of a replica and its child processes (user + system).",
            labels=WORKLOAD_LABELS,
        )
        rss = GaugeMetricFamily(
            "llmos_workload_resident_memory_bytes",
            "Resident memory of a replica and its child processes.",
            labels=WORKLOAD_LABELS,
        )
        up = GaugeMetricFamily(
            "llmos_workload_up", "1 when the replica is ready, else 0.", labels=WORKLOAD_LABELS
        )
        restarts = CounterMetricFamily(
            "llmos_workload_restarts", "Times the replica was restarted.", labels=WORKLOAD_LABELS
        )
        oom = CounterMetricFamily(
            "llmos_workload_oom_kills",
            "Processes of a replica the kernel's OOM killer ended: its own exits, and those "
            "of its processes it lived through (cgroup v1).",
            labels=WORKLOAD_LABELS,
        )
        gpu_memory = GaugeMetricFamily(
            "llmos_workload_gpu_memory_bytes",
            "GPU memory used by a replica's processes on one GPU (NVML, latest reading).",
            labels=[*WORKLOAD_LABELS, "gpu"],
        )
        gpu_share = GaugeMetricFamily(
            "llmos_workload_gpu_memory_share_bytes",
            "The GPU memory a replica may use of a GPU it shares with others "
            "(resources.gpuMemory); none for whole GPUs.",
            labels=[*WORKLOAD_LABELS, "gpu"],
        )
        on_gpus = self.gpus.snapshot.memory_by_pid() if self.gpus is not None else {}
        keys = self.runtime.keys()
        table = process_table() if keys else ProcessTable({}, {})
        for key in keys:
            status = self.runtime.status(key)
            if status is None:
                continue
            labels = _labels(key)
            up.add_metric(labels, 1.0 if status.ready else 0.0)
            restarts.add_metric(labels, float(status.restarts))
            oom.add_metric(labels, float(status.oom_kills + status.oom_exits))
            spec = self.runtime.spec(key)
            for index, share in spec.gpu_shares if spec is not None else ():
                gpu_share.add_metric([*labels, str(index)], float(share))
            if status.pid is None or status.pid not in table.usage:
                continue
            tree = table.tree(status.pid)
            used: dict[int, int] = defaultdict(int)
            for pid in tree:
                for index, count in on_gpus.get(pid, ()):
                    used[index] += count
            for index, count in sorted(used.items()):
                gpu_memory.add_metric([*labels, str(index)], float(count))
            cpu.add_metric(labels, sum(table.usage[pid][0] for pid in tree))
            rss.add_metric(labels, float(sum(table.usage[pid][1] for pid in tree)))
        yield from (cpu, rss, up, restarts, oom, gpu_memory, gpu_share)


class ControllerCollector(Collector):
    def __init__(self, manager: Manager) -> None:
        self.manager = manager

    def collect(self) -> Iterator[Metric]:
        depth = GaugeMetricFamily(
            "llmos_controller_queue_depth",
            "Keys waiting in a controller's queue.",
            labels=["controller"],
        )
        runs = CounterMetricFamily(
            "llmos_controller_reconciles", "Reconciles run.", labels=["controller"]
        )
        errors = CounterMetricFamily(
            "llmos_controller_reconcile_errors", "Reconciles that failed.", labels=["controller"]
        )
        for controller in self.manager.controllers:
            depth.add_metric([controller.name], float(len(controller.queue)))
            runs.add_metric([controller.name], float(controller.reconciles))
            errors.add_metric([controller.name], float(controller.reconcile_errors))
        yield from (depth, runs, errors)


GPU_LABELS = ["gpu", "uuid", "model"]


class GPUCollector(Collector):
    """Per-GPU series from the latest reading (refreshed with the metric history, and at
    each heartbeat); nothing is read from NVML at scrape time."""

    def __init__(self, publisher: GPUDevicePublisher) -> None:
        self.publisher = publisher

    def collect(self) -> Iterator[Metric]:
        families = {
            "utilization": GaugeMetricFamily(
                "llmos_gpu_utilization_ratio", "GPU busy time, 0 to 1.", labels=GPU_LABELS
            ),
            "used": GaugeMetricFamily(
                "llmos_gpu_memory_used_bytes", "GPU memory in use.", labels=GPU_LABELS
            ),
            "total": GaugeMetricFamily(
                "llmos_gpu_memory_total_bytes", "GPU memory.", labels=GPU_LABELS
            ),
            "temperature": GaugeMetricFamily(
                "llmos_gpu_temperature_celsius", "GPU temperature.", labels=GPU_LABELS
            ),
            "power": GaugeMetricFamily(
                "llmos_gpu_power_watts", "GPU power draw.", labels=GPU_LABELS
            ),
            "healthy": GaugeMetricFamily(
                "llmos_gpu_healthy", "1 while the GPU is healthy.", labels=GPU_LABELS
            ),
        }
        ecc = CounterMetricFamily(
            "llmos_gpu_ecc_errors",
            "ECC errors over the GPU's lifetime (NVML's aggregate counter), by type.",
            labels=[*GPU_LABELS, "type"],
        )
        for gpu in self.publisher.snapshot.gpus:
            info, reading = gpu.info, gpu.reading
            labels = [str(info.index), info.uuid, info.name]
            families["total"].add_metric(labels, float(info.memory_total_bytes))
            families["healthy"].add_metric(labels, 1.0 if gpu.health.healthy else 0.0)
            values = {
                "utilization": None
                if reading.utilization_percent is None
                else reading.utilization_percent / 100,
                "used": reading.memory_used_bytes,
                "temperature": reading.temperature_celsius,
                "power": reading.power_watts,
            }
            for key, value in values.items():
                if value is not None:
                    families[key].add_metric(labels, float(value))
            errors = reading.ecc_errors
            if errors is not None:
                for kind, count in (
                    ("corrected", errors.aggregate_corrected),
                    ("uncorrected", errors.aggregate_uncorrected),
                ):
                    if count is not None:
                        ecc.add_metric([*labels, kind], float(count))
        yield from families.values()
        yield ecc


def gpu_sampler(publisher: GPUDevicePublisher, node: str) -> Sampler:
    """Each GPU's utilization and memory for the dashboard's history, keyed by GPUDevice name."""

    async def sample() -> dict[str, dict[str, float | None]]:
        snapshot = await publisher.refresh()
        return {
            device_name(node, gpu.info.index): {
                "utilizationPercent": gpu.reading.utilization_percent,
                "memoryUsedBytes": gpu.reading.memory_used_bytes,
                "temperatureCelsius": gpu.reading.temperature_celsius,
            }
            for gpu in snapshot.gpus
        }

    return sample
