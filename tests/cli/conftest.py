"""Fixtures for driving the real CLI: a config dir per test, optionally logged in."""

from __future__ import annotations

from pathlib import Path

import pytest

from server import RunningServer

from .runner import CLI


@pytest.fixture
def cli(tmp_path: Path) -> CLI:
    """A CLI user with an empty config dir of their own."""
    return CLI(tmp_path / "config")


@pytest.fixture
def logged_in(cli: CLI, server: RunningServer) -> CLI:
    """That user, logged in to the shared server as admin."""
    result = cli.login(server)
    assert result.code == 0, result
    return cli
