"""Kinds of ``node.llmos.ai/v1``: nodes, their GPUs, and the events that explain state."""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import Field

from llmos.resources.meta import Resource, Status, Strict

GROUP = "node.llmos.ai"


class NodeSpec(Strict):
    unschedulable: bool = False


class NodeAddress(Strict):
    type: Literal["Hostname", "InternalIP", "ExternalIP"]
    address: str


class NodeInfo(Strict):
    hostname: str = ""
    os: str = ""
    arch: str = ""
    kernelVersion: str = ""
    llmosVersion: str = ""
    mode: Literal["embedded", "cluster"] = "embedded"


class NodeAllocation(Strict):
    """One replica's reservation of the node: ``cpu`` cores and ``memoryBytes``."""

    kind: str
    namespace: str = ""
    name: str
    replica: int = Field(default=0, ge=0)
    cpu: float = Field(default=0, ge=0)
    memoryBytes: int = Field(default=0, ge=0)


class NodeStatus(Status):
    capacity: dict[str, str] = Field(default_factory=dict)
    allocatable: dict[str, str] = Field(default_factory=dict)
    # The workload replicas' reservations of resources.cpu and memory (embedded mode), and
    # their sum as quantities (cpu, memory).
    allocations: list[NodeAllocation] = Field(default_factory=list)
    allocated: dict[str, str] = Field(default_factory=dict)
    # What is in use at the last heartbeat: cpu in cores, memory and disk in bytes.
    usage: dict[str, str] = Field(default_factory=dict)
    addresses: list[NodeAddress] = Field(default_factory=list)
    nodeInfo: NodeInfo = Field(default_factory=NodeInfo)
    lastHeartbeatTime: str | None = None


class Node(Resource):
    group: ClassVar[str] = GROUP
    plural: ClassVar[str] = "nodes"
    namespaced: ClassVar[bool] = False
    spec: NodeSpec = Field(default_factory=NodeSpec)
    status: NodeStatus = Field(default_factory=NodeStatus)


class ObjectReference(Strict):
    apiVersion: str = ""
    kind: str
    name: str
    namespace: str | None = None
    uid: str | None = None


class EventSpec(Strict):
    involvedObject: ObjectReference
    reason: str
    message: str = ""
    type: Literal["Normal", "Warning"] = "Normal"
    count: int = 1
    firstTimestamp: str | None = None
    lastTimestamp: str | None = None
    source: str = ""


class Event(Resource):
    group: ClassVar[str] = GROUP
    plural: ClassVar[str] = "events"
    short_names: ClassVar[tuple[str, ...]] = ("ev",)
    spec: EventSpec
    status: Status = Field(default_factory=Status)


class GPUDeviceSpec(Strict):
    nodeName: str = ""
    # Cordon: an admin sets this to keep new workloads off the GPU (held ones stay).
    unschedulable: bool = False


class GPUAllocation(Strict):
    """One replica's hold on the GPU: all of it (``whole``) or ``memoryBytes`` of it."""

    kind: str
    namespace: str = ""
    name: str
    replica: int = Field(default=0, ge=0)
    memoryBytes: int = Field(ge=0)
    whole: bool = False


class GPUEccErrors(Strict):
    volatileCorrected: int | None = None
    volatileUncorrected: int | None = None
    aggregateCorrected: int | None = None
    aggregateUncorrected: int | None = None


class GPURemappedRows(Strict):
    pending: bool | None = None
    failed: bool | None = None


class GPUUsage(Strict):
    """The reading at the last heartbeat; None where the GPU does not report the value."""

    utilizationPercent: int | None = None
    memoryUsedBytes: int | None = None
    temperatureCelsius: int | None = None
    powerWatts: float | None = None
    eccErrors: GPUEccErrors | None = None
    xidErrors: list[int] = Field(default_factory=list)
    remappedRows: GPURemappedRows | None = None
    error: str | None = None


class GPUDeviceStatus(Status):
    index: int = 0
    uuid: str = ""
    product: str = ""
    pciBusId: str = ""
    memoryTotalBytes: int = 0
    computeCapability: str = ""
    driverVersion: str | None = None
    cudaVersion: str | None = None
    migMode: Literal["Enabled", "Disabled", "NotSupported"] = "NotSupported"
    eccEnabled: bool | None = None
    powerLimitWatts: float | None = None
    health: Literal["Healthy", "Unhealthy", "Unknown"] = "Unknown"
    healthReasons: list[str] = Field(default_factory=list)
    usage: GPUUsage | None = None
    allocations: list[GPUAllocation] = Field(default_factory=list)
    lastReadingTime: str | None = None


class GPUDevice(Resource):
    """One GPU of one node, published by that node's agent; named ``{node}-gpu{index}``."""

    group: ClassVar[str] = GROUP
    plural: ClassVar[str] = "gpudevices"
    namespaced: ClassVar[bool] = False
    short_names: ClassVar[tuple[str, ...]] = ("gpu",)
    spec: GPUDeviceSpec = Field(default_factory=GPUDeviceSpec)
    status: GPUDeviceStatus = Field(default_factory=GPUDeviceStatus)
