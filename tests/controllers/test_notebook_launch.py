"""How notebooks are launched: the RStudio command line, which these machines cannot run (no
rstudio-server here), and the shell terminals start."""

from __future__ import annotations

from pathlib import Path

import pytest

from llmos.controllers import notebook_launch
from llmos.runtime.local.sandbox import Sandbox


def test_rstudio_runs_in_the_foreground_under_the_proxys_prefix(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(notebook_launch.shutil, "which", lambda name: f"/usr/bin/{name}")
    home = tmp_path / "home"
    launch = notebook_launch._rstudio(
        "/notebooks/team/r1/", tmp_path / "work", "s3cret", home, "nobody"
    )
    flags = set(launch.command[1:])
    assert launch.command[0] == "rserver"
    assert {
        "--www-address=127.0.0.1",
        "--www-port={port}",
        "--www-root-path=/notebooks/team/r1/",
        "--server-daemonize=0",
        "--server-user=nobody",
        f"--database-config-file={home / 'rserver' / 'database.conf'}",
    } <= flags
    conf = (home / "rserver" / "database.conf").read_text()
    assert "provider=sqlite" in conf and str(home / "rserver" / "db") in conf
    assert "s3cret" not in " ".join(launch.command) + str(launch.env)


def test_rstudio_without_rserver_is_not_available(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(notebook_launch.shutil, "which", lambda name: None)
    with pytest.raises(
        notebook_launch.NotebookUnavailable, match="rstudio-server is not installed"
    ):
        notebook_launch._rstudio("/notebooks/team/r1/", Path("/w"), "s", Path("/h"), "u")


@pytest.mark.parametrize(
    ("shell", "expected"),
    [
        ("/bin/sh", "/bin/sh"),  # a login shell of the server's is kept
        ("/usr/sbin/nologin", "/bin/bash"),  # a service user's is not: terminals would exit
        ("/bin/false", "/bin/bash"),
        ("/no/such/shell", "/bin/bash"),
        (None, "/bin/bash"),  # no $SHELL: not the passwd entry's (nobody's is nologin)
    ],
)
def test_terminals_get_a_shell_a_person_can_use(shell: str | None, expected: str) -> None:
    assert notebook_launch.login_shell({} if shell is None else {"SHELL": shell}) == expected


def test_a_shell_the_sandbox_hides_is_not_the_terminals(tmp_path: Path) -> None:
    # One under the server's home (~/.nix-profile/bin/zsh, say): hidden in the sandbox.
    hidden = Sandbox(tmp_path / "data").shows
    home_shell = Path.home() / ".local" / "bin" / "zsh"
    assert not hidden(home_shell) and not hidden(tmp_path / "data" / "sh")
    assert hidden(Path("/bin/bash"))  # outside, and anyone may run it
    environ = {"SHELL": "/bin/sh"}
    assert notebook_launch.login_shell(environ, runs=lambda path: False) == "/bin/bash"
    bare = notebook_launch.login_shell({"SHELL": "sh"})  # a bare name: found on PATH
    assert Path(bare).is_absolute() and Path(bare).name == "sh"
