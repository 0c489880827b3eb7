"""Shared fixtures: a real llmos server over HTTPS on loopback, and an admin client."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

sys.path.insert(0, str(Path(__file__).parent))

from kubenodes import kube_nodes  # noqa: F401  (session fixtures for tests/kube, tests/store)
from kubeplane import kube, kube_crds  # noqa: F401
from server import RunningServer, admin_server, start_server


@pytest.fixture(scope="session")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    """One server shared by tests that only add objects of their own."""
    with admin_server(tmp_path_factory.mktemp("shared") / "data") as running:
        yield running


@pytest.fixture
def admin(server: RunningServer) -> Iterator[httpx.Client]:
    with server.admin_client() as client:
        yield client


@pytest.fixture
def fresh_server(tmp_path: Path) -> Iterator[RunningServer]:
    """A server of its own, for tests that restart, kill or lock it."""
    running = start_server(tmp_path / "data")
    yield running
    if running.proc is not None and running.proc.poll() is None:
        running.stop()
