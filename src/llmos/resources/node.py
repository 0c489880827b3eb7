"""Kinds of ``node.llmos.ai/v1``: nodes and the events that explain state."""

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


class NodeStatus(Status):
    capacity: dict[str, str] = Field(default_factory=dict)
    allocatable: dict[str, str] = Field(default_factory=dict)
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
