"""The RStudio command line, which these machines cannot run (no rstudio-server here): what
LLMOS asks of rserver when a node has it."""

from __future__ import annotations

import getpass
from pathlib import Path

import pytest

from llmos.controllers import notebook


def test_rstudio_runs_in_the_foreground_under_the_proxys_prefix(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(notebook.shutil, "which", lambda name: f"/usr/bin/{name}")
    home = tmp_path / "home"
    launch = notebook._rstudio("/notebooks/team/r1/", tmp_path / "work", "s3cret", home)
    flags = set(launch.command[1:])
    assert launch.command[0] == "rserver"
    assert {
        "--www-address=127.0.0.1",
        "--www-port={port}",
        "--www-root-path=/notebooks/team/r1/",
        "--server-daemonize=0",
        f"--server-user={getpass.getuser()}",
        f"--database-config-file={home / 'rserver' / 'database.conf'}",
    } <= flags
    conf = (home / "rserver" / "database.conf").read_text()
    assert "provider=sqlite" in conf and str(home / "rserver" / "db") in conf
    assert "s3cret" not in " ".join(launch.command) + str(launch.env)


def test_rstudio_without_rserver_is_not_available(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(notebook.shutil, "which", lambda name: None)
    with pytest.raises(notebook.NotebookUnavailable, match="rstudio-server is not installed"):
        notebook._rstudio("/notebooks/team/r1/", Path("/w"), "s", Path("/h"))
