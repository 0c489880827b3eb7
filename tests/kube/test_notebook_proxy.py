"""Notebooks through :8443 in cluster mode: the proxy reaches the notebook's pod.

``https://HOST:8443/notebooks/{ns}/{name}/`` goes to the ready pod's address
(``status.endpoint``, mirrored from the pods) on 8888, presenting the token from
the notebook's Secret as embedded mode presents its secret. kwok runs no
containers, so a real JupyterLab started at the kwok pod's loopback IP with the
notebook's base URL and that token stands in for the container, as
``stand_in_engine`` does for a ModelService.
"""

from __future__ import annotations

import base64
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest

from factories import ML, bind, create_namespace, create_user
from kubenodes import KubeNodes, wait_until
from server import RunningServer, free_port
from workloads.jupyter import execute, start_kernel

from .conftest import KubeServer
from .standin import stand_in

pytestmark = pytest.mark.slow


def _notebook(admin: httpx.Client, namespace: str, name: str, **spec: Any) -> str:
    body = {
        "apiVersion": "ml.llmos.ai/v1",
        "kind": "Notebook",
        "metadata": {"name": name},
        "spec": {"type": "jupyter", **spec},
    }
    response = admin.post(f"{ML}/namespaces/{namespace}/notebooks", json=body)
    assert response.status_code == 201, response.text
    return f"{ML}/namespaces/{namespace}/notebooks/{name}"


def _home_volume(kube: httpx.Client, namespace: str, notebook: str) -> None:
    """A PersistentVolume for the notebook's home claim (no provisioner runs here)."""
    pv = {
        "apiVersion": "v1",
        "kind": "PersistentVolume",
        "metadata": {"name": f"{namespace}-{notebook}-home"},
        "spec": {
            "capacity": {"storage": "10Gi"},
            "accessModes": ["ReadWriteOnce"],
            "hostPath": {"path": f"/var/lib/llmos-test/{namespace}-{notebook}"},
            "storageClassName": "",
            "claimRef": {"namespace": namespace, "name": f"nb-{notebook}-home"},
        },
    }
    response = kube.post("/api/v1/persistentvolumes", json=pv)
    assert response.status_code == 201, response.text


@contextmanager
def stand_in_jupyter(
    address: str, base: str, secret: dict[str, Any], container: dict[str, Any], work: Path
) -> Iterator[str]:
    """A real JupyterLab at the pod's address on 8888, as the notebook's container runs it:
    the Secret's token and identity provider file, the container's identity flag."""
    home = work / "jupyter"
    root = work / "root"
    root.mkdir(parents=True)
    data = {key: base64.b64decode(value).decode() for key, value in secret["data"].items()}
    env_of = {item["name"]: item for item in container["env"]}
    mount = next(m for m in container["volumeMounts"] if m["name"] == "llmos-jupyter")
    assert env_of["PYTHONPATH"]["value"] == mount["mountPath"] == "/etc/llmos/jupyter"
    assert env_of["LLMOS_NOTEBOOK_SECRET"]["valueFrom"]["secretKeyRef"]["key"] == "token"
    identity = work / "identity"  # the pod's /etc/llmos/jupyter
    identity.mkdir()
    (identity / "llmos_jupyter_identity.py").write_text(data["llmos_jupyter_identity.py"])
    flags = [arg for arg in container["command"] if arg.startswith("--ServerApp.identity_")]
    assert flags == [
        "--ServerApp.identity_provider_class=llmos_jupyter_identity.ProxySecretIdentity"
    ]
    command = [
        sys.executable,
        "-m",
        "jupyterlab",
        "--no-browser",
        f"--ServerApp.ip={address}",
        "--ServerApp.port=8888",
        "--ServerApp.port_retries=0",
        f"--ServerApp.base_url={base}",
        f"--ServerApp.root_dir={root}",
        "--ServerApp.allow_origin=*",
        "--LabApp.news_url=",
        "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
        "--LabApp.extension_manager=readonly",
        *flags,
        *(["--allow-root"] if os.geteuid() == 0 else []),
    ]
    env = {
        **os.environ,
        "LLMOS_NOTEBOOK_SECRET": data["token"],
        "PYTHONPATH": str(identity),
        "JUPYTER_CONFIG_DIR": str(home / "config"),
        "JUPYTER_DATA_DIR": str(home / "data"),
        "JUPYTER_RUNTIME_DIR": str(home / "runtime"),
        "IPYTHONDIR": str(home / "ipython"),
    }
    url = f"http://{address}:8888{base}"
    with stand_in("JupyterLab", command, work / "jupyter.log", f"{url}api", env=env, cwd=root):
        yield url


def _status(admin: httpx.Client, path: str) -> dict[str, Any]:
    response = admin.get(path)
    assert response.status_code == 200, response.text
    result: dict[str, Any] = response.json().get("status") or {}
    return result


def test_a_notebook_pod_is_reached_through_the_proxy_with_its_secrets_token(
    kube_server: KubeServer, kube_server_nodes: KubeNodes, tmp_path: Path
) -> None:
    admin, kube, server = kube_server.admin, kube_server.kube, kube_server.server
    namespace = "nbproxy-k"
    create_namespace(admin, namespace)
    _home_volume(kube, namespace, "lab")
    path = _notebook(admin, namespace, "lab")
    base = f"/notebooks/{namespace}/lab/"

    def ready() -> dict[str, Any] | None:
        status = _status(admin, path)
        return status if status.get("phase") == "Ready" and status.get("endpoint") else None

    status = wait_until(ready, "the notebook to be Ready with an endpoint")
    assert status["url"] == base
    endpoint = status["endpoint"]
    assert endpoint.startswith("http://127.0.100.") and endpoint.endswith(":8888"), endpoint
    pod = kube.get(f"/api/v1/namespaces/{namespace}/pods/nb-lab-0").json()
    assert endpoint == f"http://{pod['status']['podIP']}:8888"

    # Before anything listens at the pod's address: the proxy says the workload did not answer.
    assert admin.get(f"{base}api/status").status_code == 503

    secret = kube.get(f"/api/v1/namespaces/{namespace}/secrets/nb-lab-token").json()
    token = base64.b64decode(secret["data"]["token"]).decode()
    address = pod["status"]["podIP"]
    container = pod["spec"]["containers"][0]
    with stand_in_jupyter(address, base, secret, container, tmp_path):
        # Jupyter wants its token: without it (as a browser at the pod would be) it refuses.
        direct = httpx.get(f"http://{address}:8888{base}api/status")
        assert direct.status_code == 403, direct.text

        # Through :8443 the proxy presents it, after LLMOS's own authentication; no page
        # JupyterLab serves carries it.
        answer = admin.get(f"{base}api/status")
        assert answer.status_code == 200, answer.text
        assert token not in answer.text
        page = admin.get(f"{base}lab")
        assert page.status_code == 200 and '"token": ""' in page.text
        assert token not in page.text
        assert admin.get(f"/notebooks/{namespace}/lab").status_code == 308

        kernel = start_kernel(admin, base)
        reply = execute(
            server.url,
            base,
            kernel,
            server.admin_token,  # type: ignore[attr-defined]
            server.ssl_context(),
            "import os\nprint('kernel at', os.getcwd())",
        )
        assert reply["status"] == "ok", reply
        assert reply["printed"].strip() == f"kernel at {tmp_path / 'root'}"

        # RBAC: create notebooks/proxy. A reader of the namespace and an outsider get 403.
        outsider, viewer, member = "nbp-out", "nbp-view", "nbp-member"
        for user in (outsider, viewer, member):
            create_user(admin, user, f"{user}-password-1")
        bind(admin, namespace, viewer, "namespace-readonly")
        bind(admin, namespace, member, "namespace-member")
        for user, expected in ((outsider, 403), (viewer, 403), (member, 200)):
            with server.client(server.login(user, f"{user}-password-1")) as client:
                response = client.get(f"{base}api/status")
                assert response.status_code == expected, (user, response.text)
        with server.client() as anonymous:
            assert anonymous.get(f"{base}api/status").status_code == 401

        # Stopped: 409 naming it, at once (spec.stopped), while the pod is still there.
        merge = {"Content-Type": "application/merge-patch+json"}
        patched = admin.patch(path, json={"spec": {"stopped": True}}, headers=merge)
        assert patched.status_code == 200, patched.text
        stopped = admin.get(f"{base}api/status")
        assert stopped.status_code == 409, stopped.text
        assert "'lab' is stopped" in stopped.json()["message"]
        wait_until(lambda: _status(admin, path).get("phase") == "Stopped", "Stopped")
        assert _status(admin, path).get("endpoint") is None


def _culled_soon(kube_server: KubeServer, namespace: str, name: str) -> str:
    """A notebook in a namespace of its own, culled after 6 s idle; its API path."""
    create_namespace(kube_server.admin, namespace)
    _home_volume(kube_server.kube, namespace, name)
    # 6 s (fractions allowed, as in embedded mode's culling test).
    return _notebook(kube_server.admin, namespace, name, idleTimeoutMinutes=0.1)


def test_an_idle_notebook_is_scaled_to_zero_and_opening_it_starts_it_again(
    kube_server: KubeServer, kube_server_nodes: KubeNodes, tmp_path: Path
) -> None:
    admin, kube = kube_server.admin, kube_server.kube
    namespace = "nbidle-k"
    path = _culled_soon(kube_server, namespace, "sleepy")
    base = f"/notebooks/{namespace}/sleepy/"
    sts = f"/apis/apps/v1/namespaces/{namespace}/statefulsets/nb-sleepy"
    core = f"/api/v1/namespaces/{namespace}"
    selector = {"labelSelector": "llmos.ai/kind=Notebook,llmos.ai/name=sleepy"}

    def phase_is(phase: str) -> Any:
        return lambda: (status := _status(admin, path)).get("phase") == phase and status

    wait_until(phase_is("Ready"), "the notebook to be Ready")

    # Nothing uses it: culled as in embedded mode, its StatefulSet scaled to 0.
    culled = wait_until(phase_is("Idle"), "the idle notebook to be culled")
    assert kube.get(sts).json()["spec"]["replicas"] == 0
    (ready,) = [c for c in culled["conditions"] if c["type"] == "Ready"]
    assert ready["status"] == "False" and ready["reason"] == "Idle", ready
    assert culled["message"] == f"stopped after 0.1 idle minutes; opening {base} starts it again"
    assert culled["endpoint"] is None and culled["lastActivityTime"]
    events = admin.get(f"/apis/node.llmos.ai/v1/namespaces/{namespace}/events").json()["items"]
    assert any(
        e["spec"]["reason"] == "Culled" and e["spec"]["involvedObject"]["name"] == "sleepy"
        for e in events
    ), events
    wait_until(lambda: not kube.get(f"{core}/pods", params=selector).json()["items"], "no pod")
    # Its home and token stay for the next start.
    assert kube.get(f"{core}/persistentvolumeclaims/nb-sleepy-home").status_code == 200
    assert kube.get(f"{core}/secrets/nb-sleepy-token").status_code == 200

    # Opening its URL scales it back and waits for its new pod. kwok runs no container,
    # so then nothing answers at the pod's address: the proxy got as far as forwarding.
    woken = admin.get(f"{base}api/status", timeout=120)
    assert woken.status_code == 503, woken.text
    assert "the workload did not answer" in woken.json()["message"], woken.text
    assert kube.get(sts).json()["spec"]["replicas"] == 1
    status = wait_until(phase_is("Ready"), "the woken notebook to be Ready")
    assert status["lastActivityTime"] > culled["lastActivityTime"]
    assert status["endpoint"], status

    # A longer timeout, so it stays up while a real Jupyter starts at the new pod's address.
    merge = {"Content-Type": "application/merge-patch+json"}
    patch = {"spec": {"idleTimeoutMinutes": 30}}
    assert admin.patch(path, json=patch, headers=merge).status_code == 200
    pod = kube.get(f"{core}/pods/nb-sleepy-0").json()
    secret = kube.get(f"{core}/secrets/nb-sleepy-token").json()
    container = pod["spec"]["containers"][0]
    with stand_in_jupyter(pod["status"]["podIP"], base, secret, container, tmp_path):
        answer = admin.get(f"{base}api/status")
        assert answer.status_code == 200, answer.text


def test_a_replica_that_is_not_the_leader_wakes_a_culled_notebook(
    kube_server: KubeServer, kube_server_nodes: KubeNodes, tmp_path: Path
) -> None:
    """Only the leader runs controllers: another replica wakes it through the status."""
    admin, kube = kube_server.admin, kube_server.kube
    namespace = "nbwake-k"
    path = _culled_soon(kube_server, namespace, "dozy")
    sts = f"/apis/apps/v1/namespaces/{namespace}/statefulsets/nb-dozy"
    wait_until(lambda: _status(admin, path).get("phase") == "Idle", "the notebook to be culled")
    assert kube.get(sts).json()["spec"]["replicas"] == 0

    # A second server replica on the same cluster: the first holds the leader lease.
    first = kube_server.server
    second = RunningServer(tmp_path / "data", free_port(), list(first.args)).start(timeout=120)
    try:
        token = first.admin_token
        with second.client(token) as other:
            woken = other.get(f"/notebooks/{namespace}/dozy/api/status", timeout=120)
        # kwok runs no container: the proxy got as far as forwarding to the new pod.
        assert woken.status_code == 503, woken.text
        assert "the workload did not answer" in woken.json()["message"], woken.text
        assert kube.get(sts).json()["spec"]["replicas"] == 1
        assert "is the leader" not in second.log()  # the first one scaled it back
    finally:
        assert second.stop() == 0, second.log()
    ready = wait_until(
        lambda: (status := _status(admin, path)).get("phase") == "Ready" and status, "Ready"
    )
    assert ready["endpoint"], ready


def test_a_notebook_that_is_not_ready_is_503_with_the_reason(
    kube_server: KubeServer, kube_server_nodes: KubeNodes
) -> None:
    admin = kube_server.admin
    namespace = "nbwait-k"
    create_namespace(admin, namespace)
    # No PersistentVolume for its home claim: it stays Pending, and says why.
    path = _notebook(admin, namespace, "waiting")
    wait_until(lambda: _status(admin, path).get("phase") == "Pending", "Pending")
    response = admin.get(f"/notebooks/{namespace}/waiting/api/status")
    assert response.status_code == 503, response.text
    message = response.json()["message"]
    assert "notebook 'waiting' is not ready (Pending)" in message
    assert "PersistentVolumeClaim" in message, message
    missing = admin.get(f"/notebooks/{namespace}/nothing/api/status")
    assert missing.status_code == 404, missing.text
