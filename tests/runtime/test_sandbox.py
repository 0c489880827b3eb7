"""The notebooks' sandbox (bubblewrap), run for real, and what a node without it reports."""

from __future__ import annotations

import asyncio
import logging
import os
import pwd
import socket
import subprocess
from pathlib import Path

import pytest

from llmos.controllers.isolation import Isolation, Unisolated
from llmos.runtime.local import LocalRuntime
from llmos.runtime.local.sandbox import Confinement, Sandbox, exit_code

from .helpers import PY, printed, script_spec
from .helpers import run as run_runtime


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
        "pids = [p for p in os.listdir('/proc') if p.isdigit()]\n"
        "print(os.getcwd(), len(pids), sorted(os.listdir('/dev'))[:3])\n"
    )
    printed = run(sandbox, code, Confinement((mine,), (shared,), cwd=mine)).splitlines()
    assert printed == [
        "['ro', 'volumes']",
        "False weights",
        "Read-only file system",
        f"{mine} 2 ['core', 'fd', 'full']",  # its own /proc (bwrap's init and itself), /dev
    ]
    assert (mine / "out.txt").read_text() == "kept"
    assert not (shared / "new.txt").exists()


def test_gpus_are_bound_only_when_given(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr("llmos.runtime.local.sandbox._gpu_devices", lambda: ["/dev/nvidia0"])
    sandbox = Sandbox(tmp_path, program="/usr/bin/bwrap")
    with_gpus = sandbox.wrap(["x"], Confinement((), gpus=True))
    assert "/dev/nvidia0" in with_gpus
    assert "/dev/nvidia0" not in sandbox.wrap(["x"], Confinement(()))


def test_without_bubblewrap_auto_says_so_and_required_refuses(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    missing = Sandbox(tmp_path, program="")
    status: dict[str, object] = {}
    auto = Isolation(missing, "auto")
    with caplog.at_level(logging.INFO, "llmos.controllers.isolation"):
        auto.announce()  # at server start
        Isolation(Sandbox(tmp_path), "auto").announce()
    said = [(r.levelname, r.getMessage()) for r in caplog.records]
    assert said[0][0] == "WARNING" and "able to read its data: bubblewrap is not" in said[0][1]
    assert said[1][0] == "INFO" and said[1][1].startswith("workloads run in a bubblewrap sandbox")
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


def test_a_users_loader_variables_reach_only_the_program_inside(tmp_path: Path) -> None:
    """A workload's env is its user's (spec.env): an LD_PRELOAD there would load their library
    into bwrap, which runs outside the sandbox with the server's rights. LD_DEBUG_OUTPUT shows
    who reads them: only the program inside, whose trace goes to the data dir as it sees it
    (an empty tmpfs), so nothing lands in the real one."""
    data = tmp_path / "data"
    data.mkdir()
    key = "notebooks/ns/nb/0"
    argv = Sandbox(data).wrap(
        [PY, "-c", "import os; print('inside:', os.environ['LD_DEBUG'])"], Confinement(())
    )
    env = (("LD_DEBUG", "files"), ("LD_DEBUG_OUTPUT", str(data / "trace")))

    async def body(runtime: LocalRuntime) -> None:
        await runtime.ensure(script_spec(key, "", command=argv, env=env))
        await asyncio.wait_for(printed(runtime, key, "inside: files"), 30)
        await runtime.remove(key)

    run_runtime(tmp_path, body)
    assert list(data.iterdir()) == []


@pytest.mark.skipif(os.geteuid() != 0, reason="for a server that runs as root")
def test_a_root_servers_workload_is_not_root(tmp_path: Path) -> None:
    """Root without capabilities still owns every root file and root-only socket that no folder
    hides (systemd's, Docker's: they take its word that it is root): it runs as nobody."""
    shared = tmp_path / "shared"
    shared.mkdir()
    key, sock = shared / "key.pem", shared / "root.sock"
    key.write_text("private")
    key.chmod(0o600)
    with socket.socket(socket.AF_UNIX) as server:
        server.bind(str(sock))
        sock.chmod(0o600)
        server.listen()
        code = (
            "import os, socket\n"
            "print(os.getuid() != 0)\n"
            f"for attempt in (lambda: open({str(key)!r}).read(),\n"
            f"                lambda: socket.socket(socket.AF_UNIX).connect({str(sock)!r})):\n"
            "    try:\n"
            "        attempt()\n"
            "        print('allowed')\n"
            "    except PermissionError:\n"
            "        print('denied')\n"
        )
        printed = run(Sandbox(tmp_path / "data"), code, Confinement((), (shared,)))
    assert printed.splitlines() == ["True", "denied", "denied"]


@pytest.mark.skipif(os.geteuid() != 0, reason="for a server that runs as root")
def test_a_root_servers_workload_owns_its_writable_folders(tmp_path: Path) -> None:
    """What the server put there (a restored snapshot's files) is the workload's user's too;
    a file with another name elsewhere (a hard link) is left alone."""
    data = tmp_path / "data"
    volume = data / "volumes" / "ns" / "v"
    (volume / "sub").mkdir(parents=True)
    restored, outside = volume / "sub" / "restored.txt", tmp_path / "outside.txt"
    restored.write_text("from a snapshot")
    outside.write_text("root's")
    os.link(outside, volume / "linked.txt")
    code = (
        f"open({str(restored)!r}, 'a').write(', edited')\n"
        f"open({str(volume / 'new.txt')!r}, 'w').write('new')\n"
    )
    run(Sandbox(data), code, Confinement((volume,), cwd=volume))
    assert restored.read_text() == "from a snapshot, edited"
    nobody = pwd.getpwnam("nobody").pw_uid
    assert [(volume / "new.txt").stat().st_uid, volume.stat().st_uid] == [nobody, nobody]
    assert outside.stat().st_uid == 0


def test_a_folder_shown_that_holds_the_data_dir_does_not_show_it(tmp_path: Path) -> None:
    """A readable folder (a model's, a program's) around the data dir: the data dir stays hidden."""
    data = tmp_path / "srv" / "data"
    data.mkdir(parents=True)
    (data / "llmos.db").write_text("secrets")
    (tmp_path / "srv" / "model.gguf").write_text("weights")
    code = (
        f"import os; print(open({str(tmp_path / 'srv' / 'model.gguf')!r}).read(), "
        f"os.listdir({str(data)!r}))"
    )
    assert run(Sandbox(data), code, Confinement((), (tmp_path / "srv",))) == "weights []"


def test_workloads_run_as_the_uid_not_the_user_env_says(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A root server started with `su` (no `-`) keeps the caller's $USER: not its name.
    monkeypatch.setenv("USER", "alice")
    monkeypatch.setenv("LOGNAME", "alice")
    off = Isolation(Sandbox(tmp_path), "off")
    assert off.user() == pwd.getpwuid(os.geteuid()).pw_name
    # With no passwd entry for the uid, the uid itself.
    monkeypatch.setattr(pwd, "getpwuid", lambda uid: (_ for _ in ()).throw(KeyError(uid)))
    assert off.user() == str(os.geteuid())
