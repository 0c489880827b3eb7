"""Fixtures shared by the preflight tests; the factories live in hosttree.py."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from .hosttree import HostTree, healthy_tree


@pytest.fixture
def tree(tmp_path: Path) -> HostTree:
    """A healthy fixture host; tests change what they need."""
    return healthy_tree(tmp_path / "host")


def require_root_and_tools(*tools: str) -> None:
    """Skip on a developer machine without root or the tools, but fail in CI.

    CI runs as root after scripts/setup-system-deps.sh installed the tools,
    so a skip there would hide a broken setup.
    """
    problems = []
    if os.geteuid() != 0:
        problems.append("needs root")
    problems += [
        f"needs {tool} (scripts/setup-system-deps.sh)" for tool in tools if not shutil.which(tool)
    ]
    if not problems:
        return
    message = "; ".join(problems)
    if os.environ.get("CI"):
        pytest.fail(f"CI must run this test: {message}")
    pytest.skip(message)
