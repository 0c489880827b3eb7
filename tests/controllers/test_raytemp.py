"""The start-up sweep of Ray temp dirs, which their clusters (sandboxed users) can write in."""

from __future__ import annotations

import asyncio
import os
import threading
from pathlib import Path

from llmos.controllers.raytemp import OWNER_FILE, RayTempDirs


def test_a_cluster_cannot_hold_up_the_servers_start_with_its_owner_file(tmp_path: Path) -> None:
    """A cluster's temp dir is its own (the sandbox gives it to the cluster's user), so its
    owner file may be a FIFO by the next start: the sweep passes it by instead of waiting
    on it for good, and still clears this server's other dirs."""
    data = tmp_path / "data"
    temps = RayTempDirs(data, tmp_path / "ray")
    planted, plain = temps.make("ns", "planted"), temps.make("ns", "plain")
    (planted / OWNER_FILE).unlink()
    os.mkfifo(planted / OWNER_FILE)
    done, unblocked = threading.Event(), []

    def watchdog() -> None:  # only if the sweep waits on the FIFO: let it go on, then fail
        if not done.wait(10):
            unblocked.append(True)
            with open(planted / OWNER_FILE, "w") as fifo:
                fifo.write(f"{data}\n")

    helper = threading.Thread(target=watchdog)
    helper.start()
    try:
        asyncio.run(temps.sweep())
    finally:
        done.set()
        helper.join()
    assert not unblocked, "the sweep waited on the FIFO"
    assert not plain.exists() and planted.exists()


def test_the_clusters_temp_dirs_are_in_a_folder_only_the_server_enters(tmp_path: Path) -> None:
    """A cluster's dir is its sandbox's user's (nobody, for a root server): any other process
    of that user on the host could use its Ray sockets if it could reach the dir."""
    root = tmp_path / "ray"
    root.mkdir(mode=0o755)  # as an older server left it
    RayTempDirs(tmp_path / "data", root).make("ns", "cluster")
    assert root.stat().st_mode & 0o777 == 0o700
