"""A notebook's log: read through the API, it outlives a stop of its process and goes when
the notebook is deleted."""

from __future__ import annotations

import time
import uuid
from pathlib import Path

import httpx
from helpers import create, notebook, path, phase_is, wait_for

from cli.runner import CLI
from server import RunningServer


def test_a_notebooks_log_stays_through_a_stop_and_goes_with_the_notebook(
    server: RunningServer, admin: httpx.Client, tmp_path: Path
) -> None:
    name = f"logged-{uuid.uuid4().hex[:6]}"
    url = path("notebooks", "default", name)
    log = server.data_dir / "logs" / f"notebooks_default_{name}_0.log"
    early = admin.get(f"{url}/logs")  # not made yet: no notebook, no log
    assert early.status_code == 404, early.text
    create(admin, "notebooks", "default", notebook(name))
    wait_for(admin, url, phase_is("Ready"), "Ready", 120)
    served = admin.get(f"{url}/logs")
    assert served.status_code == 200, served.text
    assert "Jupyter Server" in served.text and "is running at" in served.text, served.text
    assert len(admin.get(f"{url}/logs", params={"tailLines": "2"}).text.splitlines()) == 2
    cli = CLI(tmp_path / "config")
    assert cli.login(server).code == 0
    shown = cli("logs", f"nb/{name}", "--tail", "2")
    assert shown.code == 0 and len(shown.stdout.splitlines()) == 2, shown
    assert admin.get(f"{url}/logs", params={"tailLines": "-1"}).status_code == 400
    merge = {"Content-Type": "application/merge-patch+json"}
    admin.patch(url, json={"spec": {"stopped": True}}, headers=merge)
    wait_for(admin, url, phase_is("Stopped"), "Stopped")
    assert log.read_text(), "a stopped notebook's log is kept"
    after = admin.get(f"{url}/logs")
    assert after.status_code == 200 and served.text.splitlines()[0] in after.text

    assert admin.delete(url).status_code == 200
    deadline = time.monotonic() + 30
    while log.exists():
        assert time.monotonic() < deadline, f"{log} is still there"
        time.sleep(0.1)
