"""Volumes as PVCs, Notebooks as StatefulSets with a home PVC, MLClusters as KubeRay RayClusters."""

from __future__ import annotations

from typing import Any

from llmos._lib.quantity import parse_quantity
from llmos.runtime.jupyter_auth import (
    IDENTITY_DIR,
    IDENTITY_FILE,
    SECRET_ENV,
    identity_flag,
    identity_source,
)
from llmos.runtime.kube.render.common import (
    FS_GROUP,
    NOTEBOOK_PORT,
    KubeSettings,
    Unsupported,
    child_meta,
    child_name,
    container_resources,
    env_vars,
    labels,
    network_policy,
    secret_name,
    token_secret,
    volume_mounts,
)

# -- Volume -------------------------------------------------------------------------------


def volume(vol: dict[str, Any], settings: KubeSettings) -> list[dict[str, Any]]:
    spec = vol["spec"]
    if spec.get("fromSnapshot"):
        raise Unsupported(
            "spec.fromSnapshot: restoring from a VolumeSnapshot is not available in cluster "
            "mode yet"
        )
    claim: dict[str, Any] = {
        "accessModes": [spec.get("accessMode") or "ReadWriteOnce"],
        "resources": {"requests": {"storage": str(spec.get("capacity") or "10Gi")}},
    }
    if settings.storage_class:
        claim["storageClassName"] = settings.storage_class
    return [
        {
            "apiVersion": "v1",
            "kind": "PersistentVolumeClaim",
            "metadata": child_meta(vol, child_name("Volume", vol["metadata"]["name"])),
            "spec": claim,
        }
    ]


# -- Notebook -----------------------------------------------------------------------------


def notebook_path(nb: dict[str, Any]) -> str:
    meta = nb["metadata"]
    return f"/notebooks/{meta['namespace']}/{meta['name']}/"


IDENTITY_VOLUME = "llmos-jupyter"  # the Secret's identity provider file, as a pod volume


def notebook_secret_name(nb: dict[str, Any]) -> str:
    return secret_name(nb)


def _notebook_container(
    nb: dict[str, Any], settings: KubeSettings
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    spec = nb["spec"]
    base = notebook_path(nb)
    kind = spec.get("type") or "jupyter"
    if kind not in ("jupyter", "vscode"):
        raise Unsupported(
            f"spec.type: {kind} notebooks are not available in cluster mode: use jupyter or vscode"
        )
    # The notebook's secret (a Secret it owns) guards it inside the cluster; LLMOS's proxy
    # presents it, as in embedded mode, after its own authentication and RBAC.
    secret = {"valueFrom": {"secretKeyRef": {"name": notebook_secret_name(nb), "key": "token"}}}
    if kind == "vscode":
        image = settings.vscode_image
        command = ["code-server", "--bind-addr", f"0.0.0.0:{NOTEBOOK_PORT}", "--auth", "password"]
        command += ["--disable-telemetry", "--disable-proxy", "/home/coder"]
        env = [{"name": "HASHED_PASSWORD", **secret}]
        home = "/home/coder"
    else:
        image = settings.jupyter_image
        command = [
            "start-notebook.py",
            f"--ServerApp.base_url={base}",
            f"--ServerApp.port={NOTEBOOK_PORT}",
            "--ServerApp.ip=0.0.0.0",
            # Lets in only what carries the secret, which no page it serves shows; the
            # image has no LLMOS, so the provider's source comes in the Secret, as a file.
            identity_flag(IDENTITY_FILE.removesuffix(".py")),
        ]
        env = [{"name": SECRET_ENV, **secret}, {"name": "PYTHONPATH", "value": IDENTITY_DIR}]
        home = "/home/jovyan"
    volumes, mounts = volume_mounts(spec.get("volumes"), home)
    if not mounts:
        mounts = [{"name": "home", "mountPath": home}]
    if kind == "jupyter":
        mounts.append({"name": IDENTITY_VOLUME, "mountPath": IDENTITY_DIR, "readOnly": True})
    # Jupyter's /api (its version) needs no token.
    probe_path = "/healthz" if kind == "vscode" else f"{base}api"
    return {
        "name": "notebook",
        "image": image,
        "command": command,
        "ports": [{"name": "http", "containerPort": NOTEBOOK_PORT, "protocol": "TCP"}],
        "env": env + env_vars(spec.get("env")),
        "resources": container_resources(spec.get("resources")),
        "readinessProbe": {"httpGet": {"path": probe_path, "port": "http"}, "periodSeconds": 5},
        "volumeMounts": mounts,
    }, volumes


def home_claim_name(nb: dict[str, Any]) -> str:
    return child_name("Notebook", nb["metadata"]["name"]) + "-home"


def notebook(nb: dict[str, Any], settings: KubeSettings, token: str) -> list[dict[str, Any]]:
    """A Notebook's Secret (its token), home PVC (unless it mounts Volumes), Service, StatefulSet.

    The home is a PVC of its own, owned by the Notebook (kept while it is stopped,
    deleted with it), not a StatefulSet claim template: a template can never change,
    so adding a Volume or changing the storage class would wedge the StatefulSet.
    """
    spec = nb["spec"]
    name = child_name("Notebook", nb["metadata"]["name"])
    selector = labels(nb)
    container, volumes = _notebook_container(nb, settings)
    jupyter = (spec.get("type") or "jupyter") == "jupyter"
    secret = token_secret(nb, token)
    if jupyter:
        secret["stringData"][IDENTITY_FILE] = identity_source()
    objects = [secret, *network_policy(nb, settings)]
    if not volumes:
        claim: dict[str, Any] = {
            "accessModes": ["ReadWriteOnce"],
            "resources": {"requests": {"storage": "10Gi"}},
        }
        if settings.storage_class:
            claim["storageClassName"] = settings.storage_class
        objects.append(
            {
                "apiVersion": "v1",
                "kind": "PersistentVolumeClaim",
                "metadata": child_meta(nb, home_claim_name(nb)),
                "spec": claim,
            }
        )
        volumes = [{"name": "home", "persistentVolumeClaim": {"claimName": home_claim_name(nb)}}]
    if jupyter:
        items = [{"key": IDENTITY_FILE, "path": IDENTITY_FILE}]
        source = {"secretName": notebook_secret_name(nb), "items": items}
        volumes.append({"name": IDENTITY_VOLUME, "secret": source})
    statefulset: dict[str, Any] = {
        "serviceName": name,
        "replicas": 0 if spec.get("stopped") else 1,
        # A pod that can never be Ready (a bad image, no room) must not block the fix.
        "podManagementPolicy": "Parallel",
        "selector": {"matchLabels": selector},
        "template": {
            "metadata": {"labels": selector},
            "spec": {
                "containers": [container],
                "volumes": volumes,
                "securityContext": {"fsGroup": FS_GROUP[spec.get("type") or "jupyter"]},
            },
        },
    }
    return [
        *objects,
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": child_meta(nb, name),
            "spec": {
                "selector": selector,
                "ports": [{"name": "http", "port": NOTEBOOK_PORT, "targetPort": "http"}],
            },
        },
        {
            "apiVersion": "apps/v1",
            "kind": "StatefulSet",
            "metadata": child_meta(nb, name),
            "spec": statefulset,
        },
    ]


# -- MLCluster ----------------------------------------------------------------------------


def _ray_start_resources(spec: dict[str, Any] | None) -> dict[str, str]:
    """``rayStartParams`` that tell Ray what the container was given."""
    spec = spec or {}
    params: dict[str, str] = {}
    if spec.get("cpu") is not None:
        params["num-cpus"] = str(max(1, int(float(parse_quantity(str(spec["cpu"]))))))
    if spec.get("gpu"):
        params["num-gpus"] = str(int(spec["gpu"]))
    return params


def _ray_env(cluster: dict[str, Any]) -> list[dict[str, Any]]:
    """Ray's token auth for every process that talks to the cluster (autoscaler included)."""
    token = {"valueFrom": {"secretKeyRef": {"name": secret_name(cluster), "key": "token"}}}
    return [
        {"name": "RAY_AUTH_MODE", "value": "token"},
        {"name": "RAY_AUTH_TOKEN", **token},
        {"name": "RAY_USAGE_STATS_ENABLED", "value": "0"},
    ]


def _ray_pod(
    cluster: dict[str, Any], resources: dict[str, Any] | None, settings: KubeSettings, head: bool
) -> dict[str, Any]:
    spec = cluster["spec"]
    volumes, mounts = volume_mounts(spec.get("volumes"), "/home/ray")
    ports = (
        [
            {"name": "gcs", "containerPort": 6379},
            {"name": "dashboard", "containerPort": 8265},
            {"name": "client", "containerPort": 10001},
        ]
        if head
        else []
    )
    # Ray's own token auth (as in embedded mode): its GCS, dashboard and Jobs API want
    # the cluster's token, which LLMOS's proxy adds. Health endpoints need none, so
    # KubeRay's probes still pass.
    container = {
        "name": "ray-head" if head else "ray-worker",
        "image": settings.ray_image,
        "env": _ray_env(cluster),
        "resources": container_resources(resources),
        "volumeMounts": [{"name": "shm", "mountPath": "/dev/shm"}, *mounts],
        "ports": ports,
    }
    shm = {"name": "shm", "emptyDir": {"medium": "Memory", "sizeLimit": settings.shm_size}}
    return {
        "metadata": {"labels": labels(cluster)},
        "spec": {
            "containers": [container],
            "volumes": [shm, *volumes],
            "securityContext": {"fsGroup": FS_GROUP["ray"]},
        },
    }


def mlcluster(cluster: dict[str, Any], settings: KubeSettings, token: str) -> list[dict[str, Any]]:
    """An MLCluster's token Secret and its KubeRay RayCluster."""
    spec = cluster["spec"]
    head = spec.get("head") or {}
    ray: dict[str, Any] = {
        "rayVersion": str(spec.get("rayVersion") or settings.ray_image.rpartition(":")[2]),
        "headGroupSpec": {
            "serviceType": "ClusterIP",
            "rayStartParams": {
                "dashboard-host": "0.0.0.0",
                **_ray_start_resources(head.get("resources")),
            },
            "template": _ray_pod(cluster, head.get("resources"), settings, head=True),
        },
        "workerGroupSpecs": [
            {
                "groupName": group["name"],
                "replicas": int(group.get("replicas", 1)),
                "minReplicas": int(group.get("minReplicas", 0)),
                "maxReplicas": int(
                    group["maxReplicas"]
                    if group.get("maxReplicas") is not None
                    else group.get("replicas", 1)
                ),
                "rayStartParams": _ray_start_resources(group.get("resources")),
                "template": _ray_pod(cluster, group.get("resources"), settings, head=False),
            }
            for group in spec.get("workerGroups") or []
        ],
    }
    if spec.get("idleTimeoutSeconds"):
        ray["enableInTreeAutoscaling"] = True
        ray["autoscalerOptions"] = {
            "idleTimeoutSeconds": int(spec["idleTimeoutSeconds"]),
            "env": _ray_env(cluster),
        }
    return [
        token_secret(cluster, token),
        *network_policy(cluster, settings, peers=True),
        {
            "apiVersion": "ray.io/v1",
            "kind": "RayCluster",
            "metadata": child_meta(cluster, child_name("MLCluster", cluster["metadata"]["name"])),
            "spec": ray,
        },
    ]
