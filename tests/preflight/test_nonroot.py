"""As non-root, checks that need root are skipped with the reason (a real setuid child)."""

from __future__ import annotations

import json
import os
from pathlib import Path

from llmos.preflight import PreflightOptions, Status, run_preflight

from .conftest import require_root_and_tools

NOBODY = 65534


def test_disk_checks_skip_when_not_root(tmp_path: Path) -> None:
    require_root_and_tools()
    # /var/lib is root's: a non-root user cannot put the test file there.
    options = PreflightOptions(data_dir=Path("/var/lib/llmos-preflight-test-missing"))
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child drops to nobody and reports through the pipe
        try:
            os.close(read)
            os.setgid(NOBODY)
            os.setuid(NOBODY)
            report = run_preflight(options, only=["disk-iops", "disk-fsync-latency"])
            os.write(write, json.dumps(report.to_dict()).encode())
        finally:
            os._exit(0)
    os.close(write)
    with os.fdopen(read) as pipe:
        payload = pipe.read()
    os.waitpid(pid, 0)
    results = json.loads(payload)["results"]
    assert [r["status"] for r in results] == [Status.SKIP.value] * 2
    for result in results:
        assert result["reason"].startswith("needs root: cannot write a test file in /var/lib")


def test_is_root_can_be_overridden() -> None:
    assert PreflightOptions(is_root=False).running_as_root is False
    assert PreflightOptions(is_root=True).running_as_root is True
