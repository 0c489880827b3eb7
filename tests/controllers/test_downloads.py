"""Downloads: one download per key, shared by its owners, stopped when none wants it.

Against the fake hub (tests/fakehub.py) on a thread of the test process; each
download runs in a real child process (llmos.engines.downloader), and the hub
tells when its connection closes. The files are small, so these run in seconds.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from fakehub import FakeHub, Repo
from llmos.controllers.downloads import Downloads, DownloadState
from llmos.engines.sources import ModelRef

MiB = 1024 * 1024
WEIGHTS = bytes(range(256)) * (16 * 1024)  # 4 MiB


@pytest.fixture(scope="module")
def hub() -> Iterator[FakeHub]:
    fake = FakeHub().start()
    for repo in ("org/shared", "org/first", "org/second", "org/stopped"):
        fake.add(repo, Repo({"model.gguf": WEIGHTS}, hold_at=[2 * MiB]))
    yield fake
    fake.stop()


def ref(repo: str) -> ModelRef:
    return ModelRef("huggingface", repo, "model.gguf")


async def ended(state: DownloadState, timeout: float = 10.0) -> None:
    assert state.task is not None
    await asyncio.wait_for(asyncio.wait([state.task]), timeout)


def test_a_shared_download_stops_when_its_last_owner_lets_go(hub: FakeHub, tmp_path: Path) -> None:
    async def main() -> None:
        downloads = Downloads(tmp_path)
        first = downloads.state(ref("org/shared"), owner="a", endpoint=hub.url)
        assert downloads.state(ref("org/shared"), owner="b", endpoint=hub.url) is first
        await asyncio.to_thread(hub.wait_held, "org/shared", 30)

        downloads.release("a")
        assert first.running, "b still wants it"
        downloads.release("b")
        await asyncio.to_thread(hub.wait_abandoned, "org/shared", 5)
        await ended(first)
        assert first.files is None and first.error is None

        # Asked for again, it starts again and finishes (the hub holds no more).
        again = downloads.state(ref("org/shared"), owner="a", endpoint=hub.url)
        assert again is not first
        await ended(again)
        assert again.files is not None and again.files.path.read_bytes() == WEIGHTS
        assert len(hub.seen("org/shared", "GET", "resolve")) == 2
        await downloads.stop()

    asyncio.run(main())
    assert list(tmp_path.rglob("*.incomplete")) == []


def test_an_owner_asking_for_another_model_lets_go_of_the_first(
    hub: FakeHub, tmp_path: Path
) -> None:
    async def main() -> None:
        downloads = Downloads(tmp_path)
        first = downloads.state(ref("org/first"), owner="a", endpoint=hub.url)
        await asyncio.to_thread(hub.wait_held, "org/first", 30)
        second = downloads.state(ref("org/second"), owner="a", endpoint=hub.url)
        await asyncio.to_thread(hub.wait_abandoned, "org/first", 5)
        await ended(first)
        assert second.running
        await downloads.stop()

    asyncio.run(main())


def test_stop_ends_every_download_at_once(hub: FakeHub, tmp_path: Path) -> None:
    async def main() -> float:
        downloads = Downloads(tmp_path)
        state = downloads.state(ref("org/stopped"), owner="a", endpoint=hub.url)
        await asyncio.to_thread(hub.wait_held, "org/stopped", 30)
        started = time.monotonic()
        await downloads.stop()
        assert not state.running
        return time.monotonic() - started

    assert asyncio.run(main()) < 3
    hub.wait_abandoned("org/stopped", 5)
    assert list(tmp_path.rglob("*.incomplete")) == []
