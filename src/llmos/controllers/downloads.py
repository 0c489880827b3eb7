"""Model downloads in the background, one per model, with progress the controller can read.

A download runs on a worker thread (``huggingface_hub`` blocks); the
ModelService controller polls :meth:`Downloads.state` on each reconcile and
requeues while it runs. A failed download stays failed, so the controller can
report why, until :meth:`Downloads.forget_failure`; the next ask starts it again.

Downloads are told apart by model, mirror and token (its digest), not by model
alone: a ModelService without the token a private repo needs must not be handed
the files another namespace downloaded with one. Its own attempt asks the hub,
which refuses it.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import time
from dataclasses import dataclass, field
from pathlib import Path

from llmos._lib.errors import LLMOSError
from llmos.engines.base import ModelFiles
from llmos.engines.sources import ModelRef, download


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

    def state(
        self, ref: ModelRef, *, endpoint: str | None = None, token: str | None = None
    ) -> DownloadState:
        """The download of ``ref``: started if new, else as it stands (running, done or failed)."""
        key = _key(ref, endpoint, token)
        current = self._states.get(key)
        if current is not None:
            return current
        state = DownloadState(ref)
        self._states[key] = state

        def report(done: int, total: int) -> None:
            state.done_bytes, state.total_bytes = done, total

        async def run() -> None:
            try:
                state.files = await asyncio.to_thread(
                    download, ref, self.cache_dir, endpoint=endpoint, token=token, progress=report
                )
            except LLMOSError as exc:
                state.error = str(exc)
            except Exception as exc:
                state.error = f"downloading {ref.name!r} failed: {exc}"

        state.task = asyncio.get_running_loop().create_task(run(), name=f"download-{ref.name}")
        return state

    def forget_failure(
        self, ref: ModelRef, *, endpoint: str | None = None, token: str | None = None
    ) -> None:
        """Drop a failed download, so that the next :meth:`state` tries again."""
        key = _key(ref, endpoint, token)
        state = self._states.get(key)
        if state is not None and state.error:
            del self._states[key]

    async def stop(self) -> None:
        for state in self._states.values():
            if state.task is not None:
                state.task.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await state.task
