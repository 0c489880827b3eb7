"""What the children of an LLMOS object say about it: Kubernetes state as LLMOS status.

Pure functions over the objects :class:`~llmos.runtime.kube.runtime.KubeRuntime`
reads back (a StatefulSet and its pods, a PVC, a RayCluster). They return a
:class:`Observed`: the phase, ready counts, endpoints, a message, conditions to
set, and the pod-level happenings (scheduled, started, ready, OOM-killed, …)
that the controller turns into Events once each.
"""

from __future__ import annotations

from typing import Any

from llmos.runtime.base import Happening, Observed
from llmos.runtime.kube.render import NAME_LABEL, SERVING_PORT


def _condition(obj: dict[str, Any], kind: str) -> dict[str, Any]:
    for c in (obj.get("status") or {}).get("conditions") or []:
        if c.get("type") == kind:
            return dict(c)
    return {}


def pod_ready(pod: dict[str, Any]) -> bool:
    return _condition(pod, "Ready").get("status") == "True" and not pod["metadata"].get(
        "deletionTimestamp"
    )


def _ordinal(pod: dict[str, Any]) -> int:
    suffix = pod["metadata"]["name"].rpartition("-")[2]
    return int(suffix) if suffix.isdigit() else 0


def _pod_happenings(
    pod: dict[str, Any], replica: str | None = None
) -> tuple[list[Happening], str | None, str | None]:
    """Events for one pod, and (if it is stuck) a phase and message for the owner.

    ``replica`` names the pod in messages ("replica N" of a StatefulSet by default).
    """
    meta, status = pod["metadata"], pod.get("status") or {}
    name, uid = meta["name"], meta.get("uid", "")
    replica = replica or f"replica {_ordinal(pod)}"
    out: list[Happening] = []
    stuck_phase = stuck_message = None
    scheduled = _condition(pod, "PodScheduled")
    if scheduled.get("status") == "True" and pod.get("spec", {}).get("nodeName"):
        node = pod["spec"]["nodeName"]
        out.append(Happening(f"{uid}/scheduled", "Scheduled", f"{replica} ({name}) on node {node}"))
    elif scheduled.get("reason") == "Unschedulable":
        stuck_phase = "Pending"
        stuck_message = f"{replica} cannot be scheduled: {scheduled.get('message', '')}"
    for init in status.get("initContainerStatuses") or []:
        if init.get("name") == "fetch-model" and "running" in (init.get("state") or {}):
            out.append(
                Happening(f"{uid}/downloading", "Downloading", f"{replica} is fetching the model")
            )
            stuck_phase, stuck_message = "Downloading", "fetching the model into the node's cache"
    for cs in [
        *(status.get("initContainerStatuses") or []),
        *(status.get("containerStatuses") or []),
    ]:
        restarts = int(cs.get("restartCount") or 0)
        state = cs.get("state") or {}
        if "running" in state and cs.get("name") != "fetch-model":
            out.append(
                Happening(
                    f"{uid}/started/{restarts}",
                    "Started",
                    f"{replica} started on {pod.get('spec', {}).get('nodeName', '?')}",
                )
            )
        last = (cs.get("lastState") or {}).get("terminated") or {}
        if last.get("reason") == "OOMKilled":
            out.append(
                Happening(
                    f"{uid}/oom/{restarts}",
                    "OOMKilled",
                    f"{replica} ({cs.get('name')}) ran out of memory and was killed: "
                    "raise spec.resources.memory",
                    "Warning",
                )
            )
        waiting = state.get("waiting") or {}
        reason = waiting.get("reason") or ""
        if reason == "CrashLoopBackOff":
            exited = last.get("message") or f"exit code {last.get('exitCode', '?')}"
            out.append(
                Happening(
                    f"{uid}/backoff/{restarts}",
                    "BackOff",
                    f"{replica} exited: {exited}",
                    "Warning",
                )
            )
            stuck_phase = "CrashLoop"
            stuck_message = f"{replica} keeps exiting ({last.get('reason', 'Error')}): {exited}"
        elif reason in ("ErrImagePull", "ImagePullBackOff", "InvalidImageName"):
            stuck_phase = "Failed"
            stuck_message = (
                f"{replica} cannot pull image {cs.get('image', '')}: "
                f"{waiting.get('message') or reason}; check the image Setting and the "
                "node's registry access"
            )
    if pod_ready(pod):
        out.append(
            Happening(f"{uid}/ready", "Ready", f"{replica} is ready at {status.get('podIP')}")
        )
    if status.get("reason") == "Evicted":
        out.append(
            Happening(
                f"{uid}/evicted",
                "Evicted",
                f"{replica}: {status.get('message', '')}",
                "Warning",
            )
        )
    return out, stuck_phase, stuck_message


def replicated(
    wanted: int, pods: list[dict[str, Any]], port: int = SERVING_PORT, ready_word: str = "replicas"
) -> Observed:
    """The state of a StatefulSet's pods, as a ModelService's or Notebook's status."""
    pods = sorted(pods, key=_ordinal)
    ready = [p for p in pods if pod_ready(p)]
    observed = Observed(phase="Deploying", message="", replicas=wanted, ready=len(ready))
    observed.endpoints = [
        f"http://{p['status']['podIP']}:{port}"
        for p in ready
        if (p.get("status") or {}).get("podIP")
    ]
    stuck: list[tuple[str, str]] = []
    for pod in pods:
        happenings, phase, message = _pod_happenings(pod)
        observed.happenings += happenings
        if phase:
            stuck.append((phase, message or ""))
    pending = [m for p, m in stuck if p == "Pending"]
    if pending:
        observed.conditions["Scheduled"] = (False, "FailedScheduling", pending[0])
    elif pods:
        observed.conditions["Scheduled"] = (True, "Scheduled", "every replica has a node")
    if wanted == 0:
        observed.phase, observed.message = "Stopped", f"scaled to 0 {ready_word}"
    elif len(ready) >= wanted:
        observed.phase, observed.message = "Ready", f"{wanted}/{wanted} {ready_word} ready"
    elif stuck:
        order = ("Failed", "CrashLoop", "Pending", "Downloading")
        observed.phase, observed.message = min(stuck, key=lambda s: order.index(s[0]))
    else:
        observed.message = f"{len(ready)}/{wanted} {ready_word} ready"
    crashing = observed.phase == "CrashLoop"
    observed.conditions["CrashLoop"] = (crashing, "BackOff" if crashing else "", "")
    observed.conditions["Ready"] = (
        observed.phase in ("Ready", "Stopped"),
        observed.phase,
        observed.message,
    )
    return observed


def claim(pvc: dict[str, Any] | None) -> Observed:
    """A Volume's PVC."""
    if pvc is None:
        return Observed("Pending", "creating its PersistentVolumeClaim")
    status = pvc.get("status") or {}
    phase = status.get("phase") or "Pending"
    capacity = (status.get("capacity") or {}).get("storage")
    observed = Observed(phase="Ready" if phase == "Bound" else "Pending", message="")
    if phase == "Bound":
        observed.message = f"bound to {pvc.get('spec', {}).get('volumeName', '?')}"
    elif phase == "Lost":
        observed.phase, observed.message = "Failed", "its PersistentVolume was lost"
    else:
        cls = pvc.get("spec", {}).get("storageClassName") or "the default storage class"
        observed.message = f"waiting for {cls} to provision it"
    observed.conditions["Ready"] = (observed.phase == "Ready", observed.phase, observed.message)
    if capacity:
        observed.extra["capacity"] = capacity
    return observed


# KubeRay's pod labels (ray.io/v1, v1.5): which node a pod is, and of which group.
RAY_NODE_TYPE = "ray.io/node-type"
RAY_GROUP = "ray.io/group"


def _ray_nodes(
    pods: list[dict[str, Any]],
) -> tuple[list[dict[str, Any]], dict[str, int], list[Happening], list[tuple[str, str]]]:
    """Each Ray pod as a node of status.nodes, ready workers by group, events, stuck pods."""
    head = [p for p in pods if p["metadata"].get("labels", {}).get(RAY_NODE_TYPE) == "head"]
    workers = sorted(
        (p for p in pods if p["metadata"].get("labels", {}).get(RAY_NODE_TYPE) == "worker"),
        key=lambda p: (p["metadata"]["labels"].get(RAY_GROUP, ""), p["metadata"]["name"]),
    )
    nodes: list[dict[str, Any]] = []
    ready: dict[str, int] = {}
    happenings: list[Happening] = []
    stuck: list[tuple[str, str]] = []
    index: dict[str, int] = {}
    for pod in [*head, *workers]:
        group = pod["metadata"]["labels"].get(RAY_GROUP, "")
        if pod in head:
            name, label = "head", "the Ray head"
        else:
            index[group] = index.get(group, -1) + 1
            name = f"{group}-{index[group]}"
            label = f"worker {name}"
        events, phase, message = _pod_happenings(pod, label)
        happenings += events
        if phase:
            stuck.append((phase, message or ""))
        if pod["metadata"].get("deletionTimestamp"):
            phase = "Terminating"
        elif pod_ready(pod):
            phase = "Ready"
            if pod not in head:
                ready[group] = ready.get(group, 0) + 1
        node: dict[str, Any] = {"name": name, "phase": phase or "Starting"}
        ip = (pod.get("status") or {}).get("podIP")
        if ip:
            node["ip"] = ip
        nodes.append(node)
    return nodes, ready, happenings, stuck


def _group_desired(group: dict[str, Any]) -> int:
    """KubeRay's desired worker count of a group: replicas within [minReplicas, maxReplicas]."""
    if group.get("suspend"):
        return 0
    low, high = int(group.get("minReplicas") or 0), group.get("maxReplicas")
    wanted = max(int(group.get("replicas") or 0), low)
    if high is not None:
        wanted = min(wanted, int(high))
    return wanted * int(group.get("numOfHosts") or 1)


def raycluster(rc: dict[str, Any] | None, pods: list[dict[str, Any]] | None = None) -> Observed:
    """A KubeRay RayCluster (ray.io/v1, as KubeRay v1.5 reports it) and its pods.

    KubeRay's ``state`` and its ``RayClusterProvisioned`` condition only ever say that
    the cluster was ready once; whether it is ready now is the head's ``HeadPodReady``
    condition and ``readyWorkerReplicas`` against ``desiredWorkerReplicas``, once
    KubeRay has seen the current spec (``observedGeneration``).
    """
    if rc is None:
        return Observed("Starting", "creating its RayCluster")
    meta, spec, status = rc["metadata"], rc.get("spec") or {}, rc.get("status") or {}
    nodes, ready_by_group, happenings, stuck = _ray_nodes(pods or [])
    groups = [
        {
            "name": g["groupName"],
            "desiredReplicas": _group_desired(g),
            "readyReplicas": ready_by_group.get(g["groupName"], 0),
        }
        for g in spec.get("workerGroupSpecs") or []
    ]
    desired = int(status.get("desiredWorkerReplicas") or 0)
    ready = int(status.get("readyWorkerReplicas") or 0)
    head_ready = _condition(rc, "HeadPodReady").get("status") == "True"
    seen = int(status.get("observedGeneration") or 0) >= int(meta.get("generation") or 0)
    observed = Observed(
        phase="Starting", message="", replicas=desired + 1, ready=ready + int(head_ready)
    )
    observed.happenings = happenings
    failure = _condition(rc, "ReplicaFailure")
    pending = [m for p, m in stuck if p == "Pending"]
    if status.get("state") == "failed":
        observed.phase = "Failed"
        observed.message = str(status.get("reason") or "KubeRay reports the cluster failed")
    elif failure.get("status") == "True":
        observed.phase = "Failed"
        observed.message = f"KubeRay cannot make its pods: {failure.get('message', '')}"
    elif seen and head_ready and ready >= desired:
        observed.phase = "Ready"
        observed.message = f"head and {ready}/{desired} workers ready"
    elif stuck:
        order = ("Failed", "CrashLoop", "Pending", "Downloading")
        observed.phase, observed.message = min(stuck, key=lambda s: order.index(s[0]))
    elif not seen:
        observed.message = "KubeRay has not acted on the current spec yet"
    elif not head_ready:
        observed.message = "starting the Ray head"
    else:
        observed.message = f"head ready; {ready}/{desired} workers ready"
    if pending:
        observed.conditions["Scheduled"] = (False, "FailedScheduling", pending[0])
    elif nodes:
        observed.conditions["Scheduled"] = (True, "Scheduled", "every Ray node has a node")
    observed.conditions["Ready"] = (observed.phase == "Ready", observed.phase, observed.message)
    observed.extra["nodes"] = nodes
    observed.extra["workerGroups"] = groups
    if spec.get("rayVersion"):
        observed.extra["rayVersion"] = spec["rayVersion"]
    # Where users open the dashboard: LLMOS's proxy, as in embedded mode.
    owner = (meta.get("labels") or {}).get(NAME_LABEL, meta["name"])
    observed.extra["dashboardUrl"] = f"/mlclusters/{meta['namespace']}/{owner}/dashboard/"
    return observed
