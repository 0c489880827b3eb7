"""Volumes in embedded mode: a directory with measured usage, protected while mounted,
with snapshots that restore the same bytes."""

from __future__ import annotations

import hashlib
import os
import time
import uuid
from pathlib import Path

import httpx
from helpers import condition, create, notebook, path, phase_is, volume, wait_for

NS = "default"


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:6]}"


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


def test_a_mounted_volume_waits_for_its_users_and_names_them(admin: httpx.Client) -> None:
    vol, nb = unique("held"), unique("nb")
    create(admin, "volumes", NS, volume(vol))
    wait_for(admin, path("volumes", NS, vol), phase_is("Bound"), "Bound")
    create(admin, "notebooks", NS, notebook(nb, volumes=[{"name": vol}], stopped=True))
    assert admin.delete(path("volumes", NS, vol)).status_code == 200
    held = wait_for(
        admin,
        path("volumes", NS, vol),
        lambda o: condition(o, "InUse").get("status") == "True",
        "InUse",
    )
    assert f"Notebook/{nb} (user admin)" in condition(held, "InUse")["message"]
    assert held["status"]["phase"] == "Terminating"
    folder = Path(held["status"]["path"])
    assert folder.is_dir()
    admin.delete(path("notebooks", NS, nb))
    wait_for_gone(admin, path("volumes", NS, vol))
    assert not folder.exists()


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
