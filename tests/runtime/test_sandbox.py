"""The notebooks' sandbox (bubblewrap), run for real, and what a node without it reports."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from llmos.controllers.isolation import Isolation, Unisolated
from llmos.runtime.local.sandbox import Confinement, Sandbox, exit_code


def run(sandbox: Sandbox, code: str, confinement: Confinement) -> str:
    argv = sandbox.wrap(["python3", "-c", code], confinement)
    done = subprocess.run(argv, capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def test_the_sandbox_shows_its_own_folders_and_hides_the_rest(tmp_path: Path) -> None:
    data = tmp_path / "data"
    mine, theirs, shared = data / "volumes" / "mine", data / "volumes" / "theirs", data / "ro"
    for folder in (mine, theirs, shared):
        folder.mkdir(parents=True)
    (data / "llmos.db").write_text("secrets")
    (shared / "model.txt").write_text("weights")
    sandbox = Sandbox(data)
    assert sandbox.problem is None, "scripts/setup installs bubblewrap"
    code = (
        "import os\n"
        f"print(sorted(os.listdir({str(data)!r})))\n"
        f"print(os.path.exists({str(theirs)!r}), open({str(shared / 'model.txt')!r}).read())\n"
        f"open({str(mine / 'out.txt')!r}, 'w').write('kept')\n"
        "try:\n"
        f"    open({str(shared / 'new.txt')!r}, 'w')\n"
        "except OSError as exc:\n"
        "    print(exc.strerror)\n"
        "print(os.getcwd(), os.listdir('/proc/1/fd') != [], sorted(os.listdir('/dev'))[:3])\n"
    )
    printed = run(sandbox, code, Confinement((mine,), (shared,), cwd=mine)).splitlines()
    assert printed == [
        "['ro', 'volumes']",
        "False weights",
        "Read-only file system",
        f"{mine} True ['core', 'fd', 'full']",  # its own /proc (pid 1 is its own) and /dev
    ]
    assert (mine / "out.txt").read_text() == "kept"
    assert not (shared / "new.txt").exists()


def test_gpus_are_bound_only_when_given(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr("llmos.runtime.local.sandbox._gpu_devices", lambda: ["/dev/nvidia0"])
    sandbox = Sandbox(tmp_path, program="/usr/bin/bwrap")
    with_gpus = sandbox.wrap(["x"], Confinement((), gpus=True))
    assert "/dev/nvidia0" in with_gpus
    assert "/dev/nvidia0" not in sandbox.wrap(["x"], Confinement(()))


def test_without_bubblewrap_auto_says_so_and_required_refuses(tmp_path: Path) -> None:
    missing = Sandbox(tmp_path, program="")
    status: dict[str, object] = {}
    auto = Isolation(missing, "auto")
    auto.check(status, 1)
    (isolated,) = status["conditions"]  # type: ignore[misc]
    assert isolated["status"] == "False" and "apt install bubblewrap" in isolated["message"]
    assert auto.command(["jupyter"], Confinement(())) == ("jupyter",)
    with pytest.raises(Unisolated, match="--workload-sandbox is required and bubblewrap"):
        Isolation(missing, "required").check({}, 1)
    off = Isolation(Sandbox(tmp_path), "off")
    assert not off.active and off.command(["jupyter"], Confinement(())) == ("jupyter",)


def test_a_signal_death_inside_the_sandbox_reads_as_one(tmp_path: Path) -> None:
    argv = Sandbox(tmp_path).wrap(["sh", "-c", "kill -9 $$"], Confinement(()))
    done = subprocess.run(argv, capture_output=True, timeout=60, check=False)
    assert done.returncode == 137  # bwrap's 128 + SIGKILL
    assert exit_code(argv, done.returncode) == -9  # what the supervisor calls an OOM suspect
    assert exit_code(["python3"], 137) == 137 and exit_code(argv, 3) == 3
