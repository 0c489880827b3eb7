"""Volumes and snapshots in embedded mode: directories under the data dir.

A Volume is ``<data>/volumes/<namespace>/<name>``. Its usage is measured
(every 30 s, and on each change) and compared with ``spec.capacity``: going
past it sets the ``OverCapacity`` condition and a Warning Event; embedded mode
reports, it does not block writes. Workloads mount volumes by name
(:func:`mounts`): the first is their working dir, and each is also passed as
``LLMOS_VOLUME_<NAME>``.

A volume carries the ``llmos.ai/volume-protection`` finalizer from its
creation: deleting one that a Notebook, MLCluster or ModelService mounts
waits, with an ``InUse`` condition naming them and who created them, and the
files go only once nothing mounts it.

A VolumeSnapshot copies its volume's directory to
``<data>/snapshots/<namespace>/<name>`` (a point-in-time copy as far as the
files are quiet while it runs); ``spec.fromSnapshot`` on a new Volume starts it
as a copy of one.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import os
import shutil
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from llmos._lib import timefmt
from llmos._lib.errors import LLMOSError, Reason
from llmos._lib.quantity import format_bytes, gib, parse_quantity
from llmos.controllers.errors import PermanentError
from llmos.controllers.events import EventRecorder
from llmos.controllers.loop import ObjectKey, Related
from llmos.resources.meta import set_condition
from llmos.store.base import ResourceStore, WatchEvent

VOLUMES = "volumes.ml.llmos.ai"
SNAPSHOTS = "volumesnapshots.ml.llmos.ai"
FINALIZER = "llmos.ai/volume-protection"
CREATOR = "llmos.ai/creator"
# Kinds whose spec.volumes mount volumes, by store resource.
MOUNTERS = {
    "notebooks.ml.llmos.ai": "Notebook",
    "mlclusters.ml.llmos.ai": "MLCluster",
    "modelservices.ml.llmos.ai": "ModelService",
}
USAGE_PERIOD = 30.0


@dataclass(frozen=True)
class Storage:
    """Where volumes and snapshots live on this node."""

    root: Path  # the data dir

    def volume(self, namespace: str, name: str) -> Path:
        return self.root / "volumes" / namespace / name

    def snapshot(self, namespace: str, name: str) -> Path:
        return self.root / "snapshots" / namespace / name


@dataclass(frozen=True)
class Mounted:
    name: str
    path: Path
    read_only: bool = False

    @property
    def env_name(self) -> str:
        return "LLMOS_VOLUME_" + "".join(c if c.isalnum() else "_" for c in self.name.upper())


def by_access(mounted: list[Mounted]) -> tuple[tuple[Path, ...], tuple[Path, ...]]:
    """The folders of ``mounted`` a workload may write, and those it may only read."""
    return (
        tuple(m.path for m in mounted if not m.read_only),
        tuple(m.path for m in mounted if m.read_only),
    )


def _du(path: Path) -> int:
    """Bytes the files under ``path`` take, following no link (not even one swapped in for a
    folder while it walks: ``os.fwalk`` holds each folder open)."""
    total = 0
    for _dir, _dirs, files, fd in os.fwalk(path):
        for name in files:
            try:
                total += os.stat(name, dir_fd=fd, follow_symlinks=False).st_blocks * 512
            except FileNotFoundError:
                continue
    return total


def _condition_is(status: dict[str, Any], type_: str, value: str) -> bool:
    """Whether the status's condition ``type_`` is ``value`` ("True"/"False") as stored."""
    return any(
        c.get("type") == type_ and c.get("status") == value for c in status.get("conditions") or []
    )


def _disk_room(path: Path, used: int, limit: int, capacity: str) -> tuple[bool, str]:
    """Whether the disk under ``path`` can still take the volume up to its capacity (what it
    holds plus what is free), and the message saying so. Not a reservation: other volumes and
    the server share that disk, so this warns of a capacity that can never be reached."""
    free = shutil.disk_usage(path).free
    if used + free >= limit:
        return True, f"{gib(free)} free on the node's disk, enough to reach {capacity}"
    return False, (
        f"spec.capacity {capacity} is more than this node's disk can give: {gib(free)} free on "
        f"the data dir's filesystem and {gib(used)} already in the volume; writes fail when the "
        "disk is full, before the capacity is reached"
    )


def _copy(source: Path, target: Path) -> None:
    """Copy a directory tree next to ``target`` first, then move it in place (no half copies).

    ``source`` is a volume, which its workloads may change as the server (root, maybe)
    copies it: each file and folder is opened by its folder's descriptor, never following a
    link, so that a link swapped in for a file or folder after the listing is copied as the
    link it is, not as what it names (the server's database, which a Volume restored from
    the snapshot would then show). Links, modes, owners and times are kept; FIFOs, sockets
    and devices are left out, and so is what is gone by the time it is copied.
    """
    partial = target.with_name(target.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    partial.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(source, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW)
    try:
        os.mkdir(partial)
        _copy_folder(fd, partial)
        _keep(partial, os.fstat(fd))
    finally:
        os.close(fd)
    shutil.rmtree(target, ignore_errors=True)
    partial.rename(target)


# What opening an entry by name meets when a workload changed it since the listing: gone
# (ENOENT, ENOTDIR), a link now (ELOOP, under O_NOFOLLOW), no longer a link (EINVAL, readlink).
_CHANGED = (errno.ENOENT, errno.ENOTDIR, errno.ELOOP, errno.EINVAL)


def _copy_folder(folder: int, target: Path) -> None:
    """Copy what is in the open folder ``folder`` into the new folder ``target``."""
    with os.scandir(folder) as listing:
        names = [entry.name for entry in listing]
    for name in names:
        copy = target / name
        try:
            st = os.stat(name, dir_fd=folder, follow_symlinks=False)
            if stat.S_ISLNK(st.st_mode):
                os.symlink(os.readlink(name, dir_fd=folder), copy)
                _keep(copy, st)
                continue
            if not (stat.S_ISDIR(st.st_mode) or stat.S_ISREG(st.st_mode)):
                continue  # a FIFO, socket or device: nothing to keep
            kind = os.O_DIRECTORY if stat.S_ISDIR(st.st_mode) else 0
            fd = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | kind, dir_fd=folder)
        except OSError as exc:
            if exc.errno in _CHANGED:
                continue
            raise
        try:
            st = os.fstat(fd)
            if stat.S_ISDIR(st.st_mode):
                os.mkdir(copy)
                _copy_folder(fd, copy)
            elif stat.S_ISREG(st.st_mode):
                with os.fdopen(os.dup(fd), "rb") as source, open(copy, "xb") as out:
                    shutil.copyfileobj(source, out, 1 << 20)
            else:
                continue  # a FIFO swapped in for a file (O_NONBLOCK: not waited on)
        finally:
            os.close(fd)
        _keep(copy, st)


def _keep(copy: Path, st: os.stat_result) -> None:
    """Give ``copy`` the mode, owner and times of what it copies (a link's own)."""
    if not stat.S_ISLNK(st.st_mode):
        os.chmod(copy, stat.S_IMODE(st.st_mode))
    with contextlib.suppress(OSError):  # not the server's to give: it is not root
        os.chown(copy, st.st_uid, st.st_gid, follow_symlinks=False)
    os.utime(copy, ns=(st.st_atime_ns, st.st_mtime_ns), follow_symlinks=False)


def _unusable(name: str) -> str:
    """How a workload's message about a volume it cannot mount begins."""
    return f"spec.volumes: Volume {name!r}"


async def mounts(
    store: ResourceStore, storage: Storage, namespace: str, wanted: list[dict[str, Any]]
) -> list[Mounted]:
    """The volumes a workload names, ready to use; a missing one is a PermanentError."""
    result = []
    for item in wanted:
        name = item["name"]
        try:
            volume = await store.get(VOLUMES, namespace, name)
        except LLMOSError as exc:
            if exc.reason != Reason.NOT_FOUND:
                raise
            raise PermanentError(
                f"{_unusable(name)} does not exist in namespace {namespace!r}"
            ) from exc
        if volume["metadata"].get("deletionTimestamp"):
            raise PermanentError(f"{_unusable(name)} is being deleted")
        path = storage.volume(namespace, name)
        if not path.is_dir():
            raise PermanentError(f"{_unusable(name)} is not ready yet")
        result.append(Mounted(name, path, bool(item.get("readOnly"))))
    return result


def workload_env(
    mounted: list[Mounted], spec_env: list[dict[str, Any]] | None = None
) -> dict[str, str]:
    """A workload's own environment: each mounted volume as ``LLMOS_VOLUME_<NAME>``, then
    its ``spec.env`` (which wins)."""
    env = {volume.env_name: str(volume.path) for volume in mounted}
    for item in spec_env or []:
        env[item["name"]] = item.get("value", "")
    return env


async def mounted_by(event: WatchEvent) -> list[ObjectKey]:
    """The volumes a changed workload mounts (so their ``usedBy`` and finalizer follow)."""
    spec = event.object.get("spec") or {}
    return [ObjectKey(event.namespace, v["name"]) for v in spec.get("volumes") or []]


def waiting_for_it(store: ResourceStore, resource: str) -> Related:
    """Map a Volume's change to the ``resource`` objects that failed for want of it.

    A workload that names a volume not there yet (or not Bound yet) fails with a
    ``spec.volumes`` message and is not retried on a timer: once the volume comes,
    this wakes it, so applying a workload before its volume works.
    """

    async def mapper(event: WatchEvent) -> list[ObjectKey]:
        if event.type == "DELETED" or event.object["metadata"].get("deletionTimestamp"):
            return []
        why = _unusable(event.name)
        page = await store.list(resource, event.namespace)
        return [
            ObjectKey(event.namespace, obj["metadata"]["name"])
            for obj in page.items
            if str((obj.get("status") or {}).get("message", "")).startswith(why)
        ]

    return mapper


async def users_of(store: ResourceStore, namespace: str, name: str) -> list[str]:
    """Who mounts the volume: ``Kind/name (user U)`` for each workload."""
    found = []
    for resource, kind in MOUNTERS.items():
        page = await store.list(resource, namespace)
        for obj in page.items:
            if any(v.get("name") == name for v in obj["spec"].get("volumes") or []):
                creator = (obj["metadata"].get("annotations") or {}).get(CREATOR)
                who = f" (user {creator})" if creator else ""
                found.append(f"{kind}/{obj['metadata']['name']}{who}")
    return sorted(found)


class VolumeReconciler:
    resource = VOLUMES

    def __init__(self, store: ResourceStore, storage: Storage, events: EventRecorder) -> None:
        self.store = store
        self.storage = storage
        self.events = events
        self.related: dict[str, Related] = {r: mounted_by for r in MOUNTERS}

    async def users(self, namespace: str, name: str) -> list[str]:
        return await users_of(self.store, namespace, name)

    async def reconcile(self, key: ObjectKey) -> float | None:
        volume = await self.store.get(VOLUMES, key.namespace, key.name)
        path = self.storage.volume(key.namespace, key.name)
        users = await self.users(key.namespace, key.name)
        status = volume.get("status") or {}
        status["usedBy"] = users
        if volume["metadata"].get("deletionTimestamp"):
            return await self._finalize(volume, status, path, users)
        if not path.exists():
            await self._create(volume, status, path)
        used = await asyncio.to_thread(_du, path)
        capacity = volume["spec"].get("capacity", "10Gi")
        limit = int(parse_quantity(capacity))
        status.update(phase="Bound", capacity=capacity, usage=format_bytes(used), path=str(path))
        generation = volume["metadata"].get("generation")
        status["observedGeneration"] = generation
        over = used > limit
        was_over = _condition_is(status, "OverCapacity", "True")
        message = (
            f"{format_bytes(used)} used of {capacity}: delete files or raise spec.capacity"
            if over
            else f"{format_bytes(used)} used of {capacity}"
        )
        set_condition(status, "OverCapacity", over, "Full" if over else "Fits", message, generation)
        roomy, room = await asyncio.to_thread(_disk_room, path, used, limit, capacity)
        had_room = not _condition_is(status, "DiskSpace", "False")
        set_condition(
            status, "DiskSpace", roomy, "Fits" if roomy else "BeyondDisk", room, generation
        )
        set_condition(status, "Ready", True, "Bound", f"files in {path}", generation)
        volume["status"] = status
        await self.store.update_status(VOLUMES, volume)
        if over and not was_over:
            await self.events.record(volume, "OverCapacity", message, "Warning")
        if had_room and not roomy:
            await self.events.record(volume, "BeyondDisk", room, "Warning")
        return USAGE_PERIOD

    async def _create(self, volume: dict[str, Any], status: dict[str, Any], path: Path) -> None:
        source = volume["spec"].get("fromSnapshot")
        if not source:
            path.mkdir(parents=True, exist_ok=True)
            return
        snapshot_dir = self.storage.snapshot(volume["metadata"]["namespace"], source)
        if not snapshot_dir.is_dir():
            raise PermanentError(f"spec.fromSnapshot: the files of {source!r} are gone")
        await asyncio.to_thread(_copy, snapshot_dir, path)
        await self.events.record(volume, "Restored", f"restored from VolumeSnapshot {source}")

    async def _finalize(
        self, volume: dict[str, Any], status: dict[str, Any], path: Path, users: list[str]
    ) -> float | None:
        meta = volume["metadata"]
        if users:
            message = (
                f"in use by {', '.join(users)}: delete them, or take it out of their "
                "spec.volumes (a stopped workload still holds it), then it goes"
            )
            status["phase"] = "Terminating"
            set_condition(status, "InUse", True, "Mounted", message)
            volume["status"] = status
            await self.store.update_status(VOLUMES, volume)
            return 5.0
        await asyncio.to_thread(shutil.rmtree, path, True)
        meta["finalizers"] = [f for f in meta.get("finalizers") or [] if f != FINALIZER]
        await self.store.update(VOLUMES, volume)
        return None


class SnapshotReconciler:
    resource = SNAPSHOTS

    def __init__(self, store: ResourceStore, storage: Storage, events: EventRecorder) -> None:
        self.store = store
        self.storage = storage
        self.events = events

    async def reconcile(self, key: ObjectKey) -> float | None:
        target = self.storage.snapshot(key.namespace, key.name)
        try:
            snapshot = await self.store.get(SNAPSHOTS, key.namespace, key.name)
        except LLMOSError as exc:
            if exc.reason != Reason.NOT_FOUND:
                raise
            await asyncio.to_thread(shutil.rmtree, target, True)  # deleted: its files go
            return None
        status = snapshot.get("status") or {}
        if status.get("readyToUse") or snapshot["metadata"].get("deletionTimestamp"):
            return None
        source_name = snapshot["spec"]["volumeName"]
        source = self.storage.volume(key.namespace, source_name)
        if not source.is_dir():
            message = (
                f"Volume {source_name!r} does not exist (or is not ready) in {key.namespace!r}"
            )
            status.update(phase="Failed", message=message)
            set_condition(status, "Ready", False, "VolumeNotFound", message)
            snapshot["status"] = status
            await self.store.update_status(SNAPSHOTS, snapshot)
            return 10.0
        await asyncio.to_thread(_copy, source, target)
        size = await asyncio.to_thread(_du, target)
        status.update(
            phase="Ready",
            readyToUse=True,
            size=format_bytes(size),
            takenAt=timefmt.rfc3339(),
            message=f"a copy of Volume {source_name}",
        )
        set_condition(status, "Ready", True, "Taken", f"{format_bytes(size)} copied")
        snapshot["status"] = status
        await self.store.update_status(SNAPSHOTS, snapshot)
        await self.events.record(snapshot, "SnapshotTaken", f"copied Volume {source_name}")
        return None

    async def cleanup(self) -> None:
        """Remove the files of snapshots that no longer exist (deleted while stopped, too)."""
        root = self.storage.root / "snapshots"
        if not root.is_dir():
            return
        page = await self.store.list(SNAPSHOTS)
        alive = {(o["metadata"]["namespace"], o["metadata"]["name"]) for o in page.items}
        for ns_dir in root.iterdir():
            for snap_dir in ns_dir.iterdir():
                if (ns_dir.name, snap_dir.name) not in alive:
                    await asyncio.to_thread(shutil.rmtree, snap_dir, True)
