"""The bundled model is served with no network at all: a namespace with only loopback."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

HELPER = Path(__file__).with_name("offline_chat.py")


def test_the_bundled_model_deploys_and_chats_with_no_network(tmp_path: Path) -> None:
    done = subprocess.run(
        ["unshare", "--net", "--", sys.executable, str(HELPER), str(tmp_path / "data")],
        capture_output=True,
        text=True,
        timeout=280,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    seen = json.loads(done.stdout.splitlines()[-1])
    assert seen["interfaces"] == ["lo"]
    assert seen["networkReachable"] is False
    assert (seen["reply"] or "").strip(), seen
