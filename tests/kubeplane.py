"""A real Kubernetes control plane on loopback: etcd and kube-apiserver, built from Go modules.

The fixtures ``kube`` (the bare control plane) and ``kube_crds`` (with every LLMOS
CRD applied) are session-wide; ``tests/conftest.py`` makes them visible to every
test folder (tests/kube/, and the kube backend of tests/store/).

``scripts/setup-kube-fixture.sh`` builds the binaries into ``~/.cache/llmos/kube/bin``
(or ``$LLMOS_KUBE_BIN``). Without them every test here fails, naming that script:
cluster-mode tests are never skipped silently.

The API server serves HTTPS with a certificate from LLMOS's own CA helper, takes a
static bearer token of a ``system:masters`` user, runs RBAC, and signs service
account tokens with a key made here. Both processes are started in sessions of
their own, die with the test process (PR_SET_PDEATHSIG) and are stopped by PID.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import secrets
import signal
import socket
import ssl
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from llmos._lib.tls import ensure_certificates
from llmos.install.crds import crds

SETUP = "scripts/setup-kube-fixture.sh"
START_TIMEOUT = 180.0  # seconds; a cold kube-apiserver on a busy 2-core machine is slow
BINARIES = ("etcd", "kube-apiserver")
PLAIN_USER = "llmos-fixture-plain"


@dataclass(frozen=True)
class KubeCluster:
    """How to reach the fixture's API server as its admin."""

    url: str
    token: str
    ca_file: Path
    kubeconfig: Path
    work: Path  # logs, certificates and keys; the node components (kubenodes.py) use it too
    service_account_key: Path
    plain_token: str  # user PLAIN_USER: authenticated, in no group, granted nothing by default

    def write_kubeconfig(self, path: Path, token: str) -> Path:
        """A kubeconfig for this API server that authenticates with ``token``."""
        path.write_text(
            yaml.safe_dump(
                {
                    "apiVersion": "v1",
                    "kind": "Config",
                    "clusters": [
                        {
                            "name": "fixture",
                            "cluster": {
                                "server": self.url,
                                "certificate-authority": str(self.ca_file),
                            },
                        }
                    ],
                    "users": [{"name": "user", "user": {"token": token}}],
                    "contexts": [
                        {"name": "fixture", "context": {"cluster": "fixture", "user": "user"}}
                    ],
                    "current-context": "fixture",
                }
            )
        )
        path.chmod(0o600)
        return path

    def client(self, **kwargs: Any) -> httpx.Client:
        return httpx.Client(
            base_url=self.url,
            headers={"Authorization": f"Bearer {self.token}"},
            verify=ssl.create_default_context(cafile=str(self.ca_file)),
            timeout=30.0,
            **kwargs,
        )


def bin_dir() -> Path:
    override = os.environ.get("LLMOS_KUBE_BIN")
    return Path(override) if override else Path.home() / ".cache/llmos/kube/bin"


def binary(name: str) -> Path:
    """A file the setup script made (a binary, or kwok.yaml); fail naming the script if absent."""
    path = bin_dir() / name
    if not os.access(path, os.R_OK if name.endswith(".yaml") else os.X_OK):
        pytest.fail(
            f"{name} is not built: {path} is missing. Run {SETUP} (it builds the control "
            "plane from Go modules; the first build takes many minutes), or point "
            "LLMOS_KUBE_BIN at a folder that has it.",
            pytrace=False,
        )
    return path


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _die_with_parent() -> Callable[[], None] | None:
    if not sys.platform.startswith("linux"):
        return None
    prctl = ctypes.CDLL(None, use_errno=True).prctl
    parent = os.getpid()

    def set_death_signal() -> None:
        prctl(1, signal.SIGKILL, 0, 0, 0)  # PR_SET_PDEATHSIG
        if os.getppid() != parent:
            os.kill(os.getpid(), signal.SIGKILL)

    return set_death_signal


class Process:
    """One control-plane process with its log, stopped by PID."""

    def __init__(self, name: str, argv: list[str], log: Path) -> None:
        self.name = name
        self.log = log
        with log.open("wb") as out:
            self.proc = subprocess.Popen(
                argv,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                preexec_fn=_die_with_parent(),
            )

    def tail(self, lines: int = 30) -> str:
        text = self.log.read_text(errors="replace").splitlines()
        return "\n".join(text[-lines:])

    def wait_until(self, ready: Callable[[], bool], what: str) -> None:
        """Poll ``ready`` until it holds; fail at once if the process exits."""
        deadline = time.monotonic() + START_TIMEOUT
        while not ready():
            code = self.proc.poll()
            if code is not None:
                pytest.fail(f"{self.name} exited ({code}) before {what}:\n{self.tail()}")
            if time.monotonic() > deadline:
                pytest.fail(f"{self.name}: no {what} after {START_TIMEOUT:.0f} s:\n{self.tail()}")
            time.sleep(0.1)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def probe(url: str, **kwargs: Any) -> bool:
    try:
        return httpx.get(url, timeout=2.0, **kwargs).status_code == 200
    except httpx.HTTPError:
        return False


def _start_etcd(work: Path) -> tuple[Process, str]:
    client_url = f"http://127.0.0.1:{free_port()}"
    peer_url = f"http://127.0.0.1:{free_port()}"
    etcd = Process(
        "etcd",
        [
            str(binary("etcd")),
            "--name=fixture",
            f"--data-dir={work / 'etcd'}",
            f"--listen-client-urls={client_url}",
            f"--advertise-client-urls={client_url}",
            f"--listen-peer-urls={peer_url}",
            f"--initial-advertise-peer-urls={peer_url}",
            f"--initial-cluster=fixture={peer_url}",
            "--unsafe-no-fsync",  # a throwaway test store: durability is not the point
            "--log-level=warn",
        ],
        work / "etcd.log",
    )
    etcd.wait_until(lambda: probe(f"{client_url}/health"), "a healthy /health")
    return etcd, client_url


def _write_service_account_key(path: Path) -> None:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    path.chmod(0o600)


def _start_apiserver(work: Path, etcd_url: str) -> tuple[Process, KubeCluster]:
    tls = ensure_certificates(work / "tls", [])
    token = secrets.token_hex(24)
    tokens = work / "tokens.csv"
    plain_token = secrets.token_hex(24)
    tokens.write_text(
        f'{token},llmos-fixture-admin,llmos-fixture-admin,"system:masters"\n'
        f"{plain_token},{PLAIN_USER},{PLAIN_USER}\n"
    )
    tokens.chmod(0o600)
    sa_key = work / "service-account.key"
    _write_service_account_key(sa_key)
    port = free_port()
    url = f"https://127.0.0.1:{port}"
    apiserver = Process(
        "kube-apiserver",
        [
            str(binary("kube-apiserver")),
            f"--etcd-servers={etcd_url}",
            "--bind-address=127.0.0.1",
            "--advertise-address=127.0.0.1",
            f"--secure-port={port}",
            f"--cert-dir={work / 'apiserver-certs'}",
            f"--tls-cert-file={tls.cert}",
            f"--tls-private-key-file={tls.key}",
            f"--token-auth-file={tokens}",
            "--authorization-mode=RBAC",
            "--service-account-issuer=https://kubernetes.default.svc.cluster.local",
            f"--service-account-key-file={sa_key}",
            f"--service-account-signing-key-file={sa_key}",
            "--service-cluster-ip-range=10.96.0.0/16",
            "--allow-privileged=true",
            "--profiling=false",
            "--v=1",
        ],
        work / "kube-apiserver.log",
    )
    headers = {"Authorization": f"Bearer {token}"}
    verify = ssl.create_default_context(cafile=str(tls.ca_cert))
    apiserver.wait_until(
        lambda: probe(f"{url}/readyz", headers=headers, verify=verify),
        "a ready /readyz",
    )
    cluster = KubeCluster(
        url, token, tls.ca_cert, work / "kubeconfig.yaml", work, sa_key, plain_token
    )
    cluster.write_kubeconfig(cluster.kubeconfig, token)
    return apiserver, cluster


@contextlib.contextmanager
def control_plane(work: Path) -> Iterator[KubeCluster]:
    """etcd and kube-apiserver on loopback, working in ``work``; stopped on exit."""
    for name in BINARIES:
        binary(name)
    work.mkdir(parents=True, exist_ok=True)
    started: list[Process] = []
    try:
        etcd, etcd_url = _start_etcd(work)
        started.append(etcd)
        apiserver, cluster = _start_apiserver(work, etcd_url)
        started.append(apiserver)
        yield cluster
    finally:
        for process in reversed(started):
            process.stop()


@pytest.fixture(scope="session")
def kube(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KubeCluster]:
    """The session's shared control plane; stopped at its end."""
    with control_plane(tmp_path_factory.mktemp("kube")) as cluster:
        yield cluster


@pytest.fixture(scope="session")
def kube_crds(kube: KubeCluster) -> KubeCluster:
    """The control plane with every LLMOS CRD applied and established."""
    with kube.client() as client:
        apply_crds(client)
    return kube


_PLURALS = {
    "ClusterRole": "clusterroles",
    "ClusterRoleBinding": "clusterrolebindings",
    "CustomResourceDefinition": "customresourcedefinitions",
    "ServiceAccount": "serviceaccounts",
}


def apply(client: httpx.Client, obj: dict[str, Any]) -> dict[str, Any]:
    """Create an object of a built-in kind, or replace it if it exists (kubectl apply, roughly)."""
    group, _, version = obj["apiVersion"].rpartition("/")
    plural = _PLURALS.get(obj["kind"], obj["kind"].lower() + "s")
    base = f"/apis/{group}/{version}" if group else f"/api/{version}"
    namespace = obj["metadata"].get("namespace")
    collection = f"{base}/namespaces/{namespace}/{plural}" if namespace else f"{base}/{plural}"
    response = client.post(collection, json=obj)
    if response.status_code == 409:
        where = f"{collection}/{obj['metadata']['name']}"
        current = client.get(where).json()
        body = {**obj, "metadata": {**obj["metadata"], **_version_of(current)}}
        response = client.put(where, json=body)
    assert response.is_success, f"{obj['kind']} {obj['metadata']['name']}: {response.text}"
    result: dict[str, Any] = response.json()
    return result


def _version_of(obj: dict[str, Any]) -> dict[str, Any]:
    return {"resourceVersion": obj["metadata"]["resourceVersion"]}


def apply_crds(client: httpx.Client) -> None:
    """Create (or replace) every LLMOS CRD, then wait until each is Established."""
    path = "/apis/apiextensions.k8s.io/v1/customresourcedefinitions"
    names = []
    for crd in crds():
        name = crd["metadata"]["name"]
        names.append(name)
        response = client.post(path, json=crd)
        if response.status_code == 409:
            current = client.get(f"{path}/{name}").json()
            crd["metadata"]["resourceVersion"] = current["metadata"]["resourceVersion"]
            response = client.put(f"{path}/{name}", json=crd)
        assert response.is_success, f"{name}: {response.status_code} {response.text}"
    wait_established(client, names)


def wait_established(client: httpx.Client, names: list[str]) -> None:
    """Wait until each named CustomResourceDefinition is Established (served)."""
    path = "/apis/apiextensions.k8s.io/v1/customresourcedefinitions"
    deadline = time.monotonic() + 60
    for name in names:
        while not _established(client.get(f"{path}/{name}").json()):
            assert time.monotonic() < deadline, f"CRD {name} never became Established"
            time.sleep(0.1)


def _established(crd: dict[str, Any]) -> bool:
    for condition in (crd.get("status") or {}).get("conditions") or []:
        if condition["type"] == "Established":
            return bool(condition["status"] == "True")
    return False
