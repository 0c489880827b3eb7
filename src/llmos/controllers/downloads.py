"""Model downloads in the background, one per model, with progress the controller can read.

A download runs in a process of its own (:mod:`llmos.engines.downloader`), so it
can be stopped at once. The ModelService controller polls :meth:`Downloads.state`
on each reconcile and requeues while it runs. A failed download stays failed, so
the controller can report why, until :meth:`Downloads.forget_failure`; the next
ask starts it again.

Downloads are told apart by model, mirror and token (its digest), not by model
alone: a ModelService without the token a private repo needs must not be handed
the files another namespace downloaded with one. Its own attempt asks the hub,
which refuses it.

Each ask names its owner (a ModelService), and one download serves every owner
that asks for its key. When the last of them wants it no more
(:meth:`Downloads.release`: the ModelService was deleted, or now wants another
model, mirror or token), a running download is stopped and forgotten; a later
ask starts it again. :meth:`Downloads.stop` stops them all when the server stops.
"""

from __future__ import annotations

import asyncio
import hashlib
import time
from collections.abc import Hashable
from dataclasses import dataclass, field
from pathlib import Path

from llmos._lib.errors import LLMOSError
from llmos._lib.tasks import cancel_all
from llmos.engines.base import ModelFiles
from llmos.engines.downloader import download_in_child
from llmos.engines.sources import ModelRef


@dataclass(frozen=True)
class DownloadKey:
    ref: ModelRef
    endpoint: str | None
    token_digest: str | None


@dataclass
class DownloadState:
    ref: ModelRef
    done_bytes: int = 0
    total_bytes: int = 0
    files: ModelFiles | None = None
    error: str | None = None
    started: float = field(default_factory=time.monotonic)
    task: asyncio.Task[None] | None = None

    @property
    def running(self) -> bool:
        return self.task is not None and not self.task.done()

    def progress(self) -> dict[str, object]:
        percent = 100.0 * self.done_bytes / self.total_bytes if self.total_bytes else 0.0
        return {
            "model": self.ref.name + (f":{self.ref.file}" if self.ref.file else ""),
            "downloadedBytes": self.done_bytes,
            "totalBytes": self.total_bytes,
            "percent": round(percent, 1),
        }


def _key(ref: ModelRef, endpoint: str | None, token: str | None) -> DownloadKey:
    digest = hashlib.sha256(token.encode()).hexdigest() if token else None
    return DownloadKey(ref, endpoint or None, digest)


class Downloads:
    def __init__(self, cache_dir: Path) -> None:
        self.cache_dir = cache_dir
        self._states: dict[DownloadKey, DownloadState] = {}
        self._wanted: dict[Hashable, DownloadKey] = {}  # owner -> the download it asked for
        self._stopping: dict[DownloadKey, asyncio.Task[None]] = {}
        self._tasks: set[asyncio.Task[None]] = set()

    def state(
        self,
        ref: ModelRef,
        *,
        owner: Hashable,
        endpoint: str | None = None,
        token: str | None = None,
    ) -> DownloadState:
        """The download of ``ref`` for ``owner``: started if new, else as it stands.

        It runs, is done or has failed. An owner wants one download at a time:
        asking for another releases the one it asked for before.
        """
        key = _key(ref, endpoint, token)
        if self._wanted.get(owner, key) != key:
            self.release(owner)
        self._wanted[owner] = key
        current = self._states.get(key)
        if current is not None:
            return current
        state = DownloadState(ref)
        self._states[key] = state
        stopping = self._stopping.pop(key, None)

        def report(done: int, total: int) -> None:
            state.done_bytes, state.total_bytes = done, total

        async def run() -> None:
            if stopping is not None:  # the same files: let its process end first
                await asyncio.wait([stopping])
            try:
                state.files = await download_in_child(
                    ref, self.cache_dir, endpoint=endpoint, token=token, progress=report
                )
            except LLMOSError as exc:
                state.error = str(exc)
            except Exception as exc:
                state.error = f"downloading {ref.name!r} failed: {exc}"

        task = asyncio.get_running_loop().create_task(run(), name=f"download-{ref.name}")
        state.task = task
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return state

    def release(self, owner: Hashable) -> None:
        """``owner`` wants no download now; one that no other owner wants is stopped.

        Stopping takes a moment (its process is signalled); a new ask for the
        same download meanwhile waits for it, then starts again.
        """
        key = self._wanted.pop(owner, None)
        if key is None or key in self._wanted.values():
            return
        state = self._states.get(key)
        if state is None or state.task is None or not state.running:
            return
        del self._states[key]
        task = state.task
        task.cancel()
        self._stopping[key] = task

        def forget(_: asyncio.Task[None]) -> None:
            if self._stopping.get(key) is task:
                del self._stopping[key]

        task.add_done_callback(forget)

    def forget_failure(
        self, ref: ModelRef, *, endpoint: str | None = None, token: str | None = None
    ) -> None:
        """Drop a failed download, so that the next :meth:`state` tries again."""
        key = _key(ref, endpoint, token)
        state = self._states.get(key)
        if state is not None and state.error:
            del self._states[key]

    async def stop(self) -> None:
        """Stop every download (their processes end) and wait until they have."""
        await cancel_all(self._tasks)
