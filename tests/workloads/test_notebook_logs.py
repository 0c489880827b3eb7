"""A notebook's log outlives a stop of its process and goes when the notebook is deleted."""

from __future__ import annotations

import time
import uuid

import httpx
from helpers import create, notebook, path, phase_is, wait_for

from server import RunningServer


def test_a_notebooks_log_stays_through_a_stop_and_goes_with_the_notebook(
    server: RunningServer, admin: httpx.Client
) -> None:
    name = f"logged-{uuid.uuid4().hex[:6]}"
    url = path("notebooks", "default", name)
    log = server.data_dir / "logs" / f"notebooks_default_{name}_0.log"
    create(admin, "notebooks", "default", notebook(name))
    wait_for(admin, url, phase_is("Ready"), "Ready", 120)
    merge = {"Content-Type": "application/merge-patch+json"}
    admin.patch(url, json={"spec": {"stopped": True}}, headers=merge)
    wait_for(admin, url, phase_is("Stopped"), "Stopped")
    assert log.read_text(), "a stopped notebook's log is kept"

    assert admin.delete(url).status_code == 200
    deadline = time.monotonic() + 30
    while log.exists():
        assert time.monotonic() < deadline, f"{log} is still there"
        time.sleep(0.1)
