"""ModelScope downloads (engines/modelscope.py through sources.download) against a fake site.

The fake (tests/fakehub.py) answers what ``modelscope_hub`` asks on loopback; the
files are small, so these run in a moment. The end-to-end test, a ModelService
that downloads the bundled GGUF from the fake and serves it, is in
tests/controllers/test_modelscope_models.py.
"""

from __future__ import annotations

import hashlib
import logging
import socket
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from fakehub import FakeHub, Repo
from llmos._lib.errors import Reason
from llmos.engines import modelscope
from llmos.engines.base import EngineError
from llmos.engines.fetch import main as fetch_main
from llmos.engines.sources import ModelRef, download, parse, resolve_now

WEIGHTS = bytes(range(256)) * 8192  # 2 MiB
TOKEN = "ms-private-token-for-tests"


@pytest.fixture(scope="module")
def hub() -> Iterator[FakeHub]:
    fake = FakeHub().start()
    fake.add("org/tiny", Repo({"model.gguf": WEIGHTS, "README.md": b"# tiny\n"}))
    fake.add("org/dir", Repo({"model.safetensors": WEIGHTS, "config.json": b"{}"}))
    fake.add("org/flaky", Repo({"model.gguf": WEIGHTS}, drop_after=512 * 1024))
    fake.add("org/private", Repo({"model.gguf": WEIGHTS}, token=TOKEN))
    yield fake
    fake.stop()


def fetched(hub: FakeHub, repo: str) -> list[str]:
    """The files of ``repo`` the hub sent (FilePath of each file GET)."""
    return [r.path.split("FilePath=", 1)[1].split("&", 1)[0] for r in hub.seen(repo, "GET", "file")]


def test_a_modelscope_ref_is_downloaded_not_resolved_now() -> None:
    ref = parse("org/tiny:model.gguf", "modelscope")
    assert ref == ModelRef("modelscope", "org/tiny", "model.gguf")
    assert resolve_now(ref) is None


def test_one_file_of_a_model_is_downloaded_with_progress(
    hub: FakeHub, tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    reports: list[tuple[int, int]] = []
    files = download(
        parse("org/tiny:model.gguf", "modelscope"),
        tmp_path,
        endpoint=hub.url,
        progress=lambda done, total: reports.append((done, total)),
    )
    assert files.path == tmp_path / "modelscope/models/org--tiny/snapshots/master/model.gguf"
    assert files.path.read_bytes() == WEIGHTS
    assert (files.format, files.size_bytes) == ("gguf", len(WEIGHTS))
    # Only the file named after the colon was fetched, with no credentials at all.
    assert fetched(hub, "org/tiny") == ["model.gguf"]
    assert not any(
        "authorization" in r.headers or "m_session_id" in r.headers.get("cookie", "")
        for r in hub.seen("org/tiny")
    )
    # Progress rises to the file's size; the server's log gets no progress bars.
    assert reports[-1] == (len(WEIGHTS), len(WEIGHTS))
    assert [done for done, _ in reports] == sorted(done for done, _ in reports)
    assert "model.gguf:" not in capfd.readouterr().err
    # modelscope_hub's state stays in the cache, not in the home directory.
    assert (tmp_path / "modelscope/.modelscope").is_dir()

    # Downloading it again asks the site for the listing, not for the bytes.
    before = len(hub.seen("org/tiny", "GET", "file"))
    again = download(parse("org/tiny:model.gguf", "modelscope"), tmp_path, endpoint=hub.url)
    assert again == files
    assert len(hub.seen("org/tiny", "GET", "file")) == before
    assert hub.seen("org/tiny", "GET", "files")


def test_a_whole_model_is_its_snapshot_directory(hub: FakeHub, tmp_path: Path) -> None:
    files = download(parse("org/dir", "modelscope"), tmp_path, endpoint=hub.url)
    assert files.path == tmp_path / "modelscope/models/org--dir/snapshots/master"
    assert files.format == "safetensors"
    assert sorted(p.name for p in files.path.iterdir()) == ["config.json", "model.safetensors"]
    assert sorted(fetched(hub, "org/dir")) == ["config.json", "model.safetensors"]


def test_a_dropped_connection_resumes_with_a_range(hub: FakeHub, tmp_path: Path) -> None:
    files = download(parse("org/flaky:model.gguf", "modelscope"), tmp_path, endpoint=hub.url)
    assert hashlib.sha256(files.path.read_bytes()).digest() == hashlib.sha256(WEIGHTS).digest()
    first, second = hub.seen("org/flaky", "GET", "file")
    assert "range" not in first.headers
    resumed_at = int(second.headers["range"].removeprefix("bytes=").rstrip("-"))
    assert 0 < resumed_at <= 512 * 1024
    assert not list(files.path.parent.glob("*.incomplete"))


def test_a_missing_model_or_file_is_not_found_by_name(hub: FakeHub, tmp_path: Path) -> None:
    with pytest.raises(EngineError) as missing:
        download(parse("org/nothing", "modelscope"), tmp_path, endpoint=hub.url)
    assert missing.value.reason == Reason.NOT_FOUND
    assert "ModelScope model 'org/nothing' was not found" in missing.value.message
    assert "spec.hfTokenSecret" in missing.value.message

    with pytest.raises(EngineError) as no_file:
        download(parse("org/tiny:q8.gguf", "modelscope"), tmp_path, endpoint=hub.url)
    assert no_file.value.reason == Reason.NOT_FOUND
    assert "has no file 'q8.gguf'" in no_file.value.message
    assert "model.gguf" in no_file.value.message


def test_a_private_model_needs_the_token(hub: FakeHub, tmp_path: Path) -> None:
    ref = parse("org/private:model.gguf", "modelscope")
    with pytest.raises(EngineError) as refused:
        download(ref, tmp_path, endpoint=hub.url)
    assert refused.value.reason == Reason.NOT_FOUND
    assert "set spec.hfTokenSecret" in refused.value.message

    files = download(ref, tmp_path, endpoint=hub.url, token=TOKEN)
    assert files.path.read_bytes() == WEIGHTS
    (get,) = hub.seen("org/private", "GET", "file")
    assert get.headers["authorization"] == f"Bearer {TOKEN}"

    # In the cache now, but a download without the token is still refused by the site.
    with pytest.raises(EngineError, match="was not found"):
        download(ref, tmp_path, endpoint=hub.url)
    with pytest.raises(EngineError, match="may not read it"):
        download(ref, tmp_path, endpoint=hub.url, token="wrong")


def test_the_cluster_fetch_container_downloads_from_its_environment(
    hub: FakeHub,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """``python -m llmos.engines.fetch`` as serving.py renders it for a ModelScope model."""
    monkeypatch.setenv("MODELSCOPE_ENDPOINT", hub.url)
    monkeypatch.setenv("MODELSCOPE_API_TOKEN", TOKEN)
    link = tmp_path / "links/team.private"
    argv = ["--model", "org/private:model.gguf", "--registry", "modelscope"]
    assert fetch_main([*argv, "--cache", str(tmp_path), "--link", str(link)]) == 0
    target = tmp_path / "modelscope/models/org--private/snapshots/master/model.gguf"
    assert link.resolve() == target and link.read_bytes() == WEIGHTS
    assert "downloaded 2 of 2 MiB" in capsys.readouterr().out

    monkeypatch.delenv("MODELSCOPE_API_TOKEN")
    assert fetch_main([*argv, "--cache", str(tmp_path), "--link", str(link)]) == 1
    assert "ModelScope model 'org/private' was not found" in capsys.readouterr().err


def test_an_unreachable_site_is_unavailable(tmp_path: Path) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with pytest.raises(EngineError) as unreachable:
        download(parse("org/tiny", "modelscope"), tmp_path, endpoint=f"http://127.0.0.1:{port}")
    assert unreachable.value.reason == Reason.SERVICE_UNAVAILABLE
    assert f"from ModelScope (http://127.0.0.1:{port}) failed" in unreachable.value.message


def test_its_log_records_reach_the_servers_logging(
    hub: FakeHub, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO, logger="modelscope_hub"):
        download(parse("org/tiny:README.md", "modelscope"), tmp_path, endpoint=hub.url)
    assert any(r.name.startswith("modelscope_hub") for r in caplog.records)


def test_without_the_client_it_names_the_extra(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    modelscope._hub.cache_clear()
    monkeypatch.setitem(sys.modules, "modelscope_hub", None)  # import fails as if absent
    try:
        with pytest.raises(EngineError) as missing:
            download(parse("org/tiny", "modelscope"), tmp_path, endpoint="http://127.0.0.1:9")
    finally:
        modelscope._hub.cache_clear()
    assert missing.value.reason == Reason.SERVICE_UNAVAILABLE
    assert "pip install 'llmos[modelscope]'" in missing.value.message
    assert "modelscope_hub" in missing.value.message
