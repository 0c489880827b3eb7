"""``llmos logs`` and the logs API in cluster mode: a replica's pod log through the Kubernetes API.

kwok's nodes have no kubelet behind them (no address, kubelet port 0), so the
API server cannot fetch a log from them: what is shown here is that LLMOS asks
the API server for the right pod and container and turns its refusal into a
clear error naming the pod and why. Reading real lines (and ``follow``) needs a
node with a kubelet; tests/api/test_cluster_logs.py runs the runtime's side of
that against a stand-in API server.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from cli.runner import CLI, assert_fails
from factories import create_namespace, ms_path
from kubenodes import KubeNodes, wait_until

from .conftest import KubeServer
from .test_runtime import _deploy, _status

pytestmark = pytest.mark.slow


def test_logs_of_a_pod_on_a_node_without_a_kubelet_say_which_pod_and_why(
    kube_server: KubeServer, kube_server_nodes: KubeNodes, tmp_path: Path
) -> None:
    admin, server = kube_server.admin, kube_server.server
    create_namespace(admin, "logs-k")
    _deploy(admin, "logs-k", "m")
    path = ms_path("logs-k", "m")

    def ready() -> dict[str, Any] | None:
        status = _status(admin, path)
        return status if status.get("phase") == "Ready" else None

    wait_until(ready, "the ModelService to be Ready")

    for params in ({}, {"follow": "true", "tailLines": "10"}):
        response = admin.get(f"{path}/logs", params=params)
        assert response.status_code == 503, response.text
        message = response.json()["message"]
        assert "could not read the log of pod logs-k/ms-m-0" in message, message
        # The API server's own reason: the node has no address to reach a kubelet at.
        assert "no preferred addresses found" in message, message
        assert "kubelet" in message

    missing = admin.get(f"{path}/logs", params={"replica": "3"})
    assert missing.status_code == 404, missing.text
    assert "pod logs-k/ms-m-3 does not exist" in missing.json()["message"]
    assert admin.get(f"{path}/logs", params={"tailLines": "-1"}).status_code == 400

    # `llmos logs` shows the same message as one plain error line.
    cli = CLI(tmp_path / "config")
    assert cli.login(server).code == 0
    assert_fails(
        cli("logs", "modelservice/m", "-n", "logs-k", "--follow"),
        1,
        "could not read the log of pod logs-k/ms-m-0",
    )
