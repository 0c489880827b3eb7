"""Finishing partial Hugging Face files against the fake hub, without a server."""

from __future__ import annotations

import hashlib
from pathlib import Path

from fakehub import FakeHub, Repo
from llmos.engines.hf_resume import finish_partials, keep_partials

DATA = bytes(range(256)) * 4096  # 1 MiB
OTHER = b"another file of the repo" * 1000
SHA = hashlib.sha256(DATA).hexdigest()


def partials_of(cache: Path) -> set[str]:
    return {p.name for p in (cache / "models--org--two" / "blobs").glob("*.partial")}


def test_one_file_is_finished_and_another_downloads_partial_is_left_alone(
    tmp_path: Path,
) -> None:
    hub = FakeHub().start()
    try:
        repo = hub.add("org/two", Repo({"a.gguf": DATA, "b.gguf": OTHER}))
        blobs = tmp_path / "models--org--two" / "blobs"
        blobs.mkdir(parents=True)
        # What a stopped downloader leaves: huggingface_hub's name, kept as <sha>.partial.
        (blobs / f"{SHA}.1a2b3c4d.incomplete").write_bytes(DATA[:300_000])
        keep_partials(blobs.iterdir())
        other = hashlib.sha256(OTHER).hexdigest()
        (blobs / f"{other}.partial").write_bytes(OTHER[:100])  # b.gguf's, another download
        seen: list[tuple[int, int]] = []

        def finish(files: list[str], whole_repo: bool) -> int:
            return finish_partials(
                "org/two",
                repo.sha,
                lambda: files,
                tmp_path,
                endpoint=hub.url,
                token=None,
                progress=lambda done, total: seen.append((done, total)),
                whole_repo=whole_repo,
            )

        assert finish(["a.gguf"], whole_repo=False) == 1
        assert (blobs / SHA).read_bytes() == DATA
        assert seen[-1] == (len(DATA), len(DATA))
        [got] = hub.seen("org/two", "GET", "resolve")
        assert got.headers["range"] == "bytes=300000-"
        assert partials_of(tmp_path) == {f"{other}.partial"}  # not asked for: kept
        # A partial that does not check out is dropped, to be downloaded whole.
        (blobs / f"{other}.partial").write_bytes(b"not the start of b.gguf")
        assert finish(["a.gguf", "b.gguf"], whole_repo=True) == 0
        assert partials_of(tmp_path) == set()
        # A stale partial (no file of this revision has its hash) goes with a whole listing.
        (blobs / f"{'0' * 64}.partial").write_bytes(b"x")
        assert finish(["a.gguf"], whole_repo=False) == 0
        assert partials_of(tmp_path) == {f"{'0' * 64}.partial"}
        assert finish(["a.gguf", "b.gguf"], whole_repo=True) == 0
        assert partials_of(tmp_path) == set()
    finally:
        hub.stop()
