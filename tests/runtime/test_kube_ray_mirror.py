"""What the Kubernetes runtime makes of KubeRay RayCluster states that the fixture does not reach.

tests/kube/test_runtime.py runs KubeRay v1.5 on kwok: clusters that come up,
scale, wait on an unschedulable worker and go. Here are the states around those,
written as KubeRay v1.5 reports them: its ``state: ready`` and
``RayClusterProvisioned`` stay set once the cluster was ready, so a lost worker
must still make the MLCluster not Ready; a spec KubeRay has not seen yet; a pod
it cannot create (``ReplicaFailure``).
"""

from __future__ import annotations

from typing import Any

from llmos.runtime.kube import mirror


def raycluster(generation: int = 1, **status: Any) -> dict[str, Any]:
    return {
        "metadata": {
            "name": "ray-rc",
            "namespace": "ns",
            "generation": generation,
            "labels": {"llmos.ai/kind": "MLCluster", "llmos.ai/name": "rc"},
        },
        "spec": {
            "rayVersion": "2.60.0",
            "workerGroupSpecs": [
                {"groupName": "cpu", "replicas": 2, "minReplicas": 0, "maxReplicas": 2},
                # Clamped by KubeRay to [minReplicas, maxReplicas].
                {"groupName": "big", "replicas": 5, "minReplicas": 0, "maxReplicas": 1},
            ],
        },
        "status": {"observedGeneration": generation, **status},
    }


def ray_pod(name: str, kind: str, group: str, ready: bool = True) -> dict[str, Any]:
    conditions = [{"type": "PodScheduled", "status": "True"}]
    if ready:
        conditions.append({"type": "Ready", "status": "True"})
    return {
        "metadata": {
            "name": name,
            "uid": f"uid-{name}",
            "labels": {"ray.io/node-type": kind, "ray.io/group": group},
        },
        "spec": {"nodeName": "node-1"},
        "status": {"podIP": f"10.0.0.{len(name)}", "conditions": conditions},
    }


HEAD_READY = {"type": "HeadPodReady", "status": "True"}
PROVISIONED = {"type": "RayClusterProvisioned", "status": "True"}


def test_a_ready_cluster_lists_its_nodes_groups_and_dashboard() -> None:
    rc = raycluster(
        state="ready",
        desiredWorkerReplicas=3,
        readyWorkerReplicas=3,
        conditions=[HEAD_READY, PROVISIONED],
        head={"podIP": "10.0.0.1", "serviceName": "ray-rc-head-svc"},
        endpoints={"dashboard": "8265", "client": "10001"},
    )
    pods = [
        ray_pod("ray-rc-head-x", "head", "headgroup"),
        ray_pod("ray-rc-cpu-worker-b", "worker", "cpu"),
        ray_pod("ray-rc-cpu-worker-a", "worker", "cpu"),
        ray_pod("ray-rc-big-worker-c", "worker", "big"),
    ]
    observed = mirror.raycluster(rc, pods)
    assert (observed.phase, observed.message) == ("Ready", "head and 3/3 workers ready")
    assert (observed.replicas, observed.ready) == (4, 4)
    assert [n["name"] for n in observed.extra["nodes"]] == ["head", "big-0", "cpu-0", "cpu-1"]
    assert observed.extra["workerGroups"] == [
        {"name": "cpu", "desiredReplicas": 2, "readyReplicas": 2},
        {"name": "big", "desiredReplicas": 1, "readyReplicas": 1},
    ]
    # Opened through LLMOS's proxy, as in embedded mode.
    assert observed.extra["dashboardUrl"] == "/mlclusters/ns/rc/dashboard/"
    assert observed.extra["rayVersion"] == "2.60.0"
    messages = [h.message for h in observed.happenings if h.reason == "Scheduled"]
    assert "the Ray head (ray-rc-head-x) on node node-1" in messages
    assert "worker cpu-0 (ray-rc-cpu-worker-a) on node node-1" in messages


def test_a_lost_worker_is_not_ready_though_kuberay_still_says_ready() -> None:
    rc = raycluster(
        state="ready",  # set once, never cleared
        desiredWorkerReplicas=3,
        readyWorkerReplicas=2,
        conditions=[HEAD_READY, PROVISIONED],
    )
    pods = [
        ray_pod("ray-rc-head-x", "head", "headgroup"),
        ray_pod("ray-rc-cpu-worker-a", "worker", "cpu"),
        ray_pod("ray-rc-cpu-worker-b", "worker", "cpu", ready=False),
        ray_pod("ray-rc-big-worker-c", "worker", "big"),
    ]
    observed = mirror.raycluster(rc, pods)
    assert (observed.phase, observed.message) == ("Starting", "head ready; 2/3 workers ready")
    assert observed.conditions["Ready"][0] is False
    nodes = {n["name"]: n["phase"] for n in observed.extra["nodes"]}
    assert nodes == {"head": "Ready", "big-0": "Ready", "cpu-0": "Ready", "cpu-1": "Starting"}


def test_a_spec_kuberay_has_not_seen_is_not_ready_yet() -> None:
    rc = raycluster(
        generation=2,
        state="ready",
        desiredWorkerReplicas=3,
        readyWorkerReplicas=3,
        conditions=[HEAD_READY, PROVISIONED],
    )
    rc["status"]["observedGeneration"] = 1
    observed = mirror.raycluster(rc, [])
    assert observed.phase == "Starting"
    assert "not acted on the current spec" in observed.message


def test_pods_kuberay_cannot_create_fail_the_cluster_with_its_message() -> None:
    rc = raycluster(
        conditions=[
            {
                "type": "ReplicaFailure",
                "status": "True",
                "reason": "FailedCreateHeadPod",
                "message": 'pods "ray-rc-head" is forbidden: exceeded quota',
            }
        ]
    )
    observed = mirror.raycluster(rc, [])
    assert observed.phase == "Failed"
    assert "exceeded quota" in observed.message


def test_no_raycluster_yet_and_a_head_still_starting() -> None:
    assert mirror.raycluster(None).phase == "Starting"
    rc = raycluster(desiredWorkerReplicas=3)
    observed = mirror.raycluster(rc, [ray_pod("ray-rc-head-x", "head", "headgroup", ready=False)])
    assert (observed.phase, observed.message) == ("Starting", "starting the Ray head")
    assert observed.extra["dashboardUrl"] == "/mlclusters/ns/rc/dashboard/"
