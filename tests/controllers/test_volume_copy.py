"""Snapshots and usage of a volume that its workload changes while the server reads it."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from llmos.controllers.volume import _copy, _du


class _Listing:
    """``os.scandir``'s iterator, over a listing taken before ``then`` runs."""

    def __init__(self, entries: list[os.DirEntry[str]]) -> None:
        self.entries = iter(entries)

    def __enter__(self) -> _Listing:
        return self

    def __exit__(self, *exc: object) -> None:
        return None

    def __iter__(self) -> Iterator[os.DirEntry[str]]:
        return self

    def __next__(self) -> os.DirEntry[str]:
        return next(self.entries)

    def close(self) -> None:
        return None


def _volume(tmp_path: Path) -> tuple[Path, Path]:
    """The server's data dir (a big database) and a volume with a file and a folder."""
    data = tmp_path / "data"
    data.mkdir()
    (data / "llmos.db").write_bytes(b"secrets" * 200_000)
    volume = tmp_path / "volume"
    (volume / "sub").mkdir(parents=True)
    (volume / "notes.txt").write_text("mine")
    (volume / "sub" / "more.txt").write_text("more")
    return data, volume


def test_links_swapped_in_while_a_snapshot_copies_are_not_followed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A workload may swap a file or folder of its volume for a link to the server's data at
    any moment; here, just after the server (root) lists the volume's top folder. The snapshot
    (and so a Volume restored from it) has the links, not the server's database."""
    data, volume = _volume(tmp_path)
    real = os.scandir
    swapped: list[bool] = []

    def scandir(where: Any = ".") -> _Listing:
        with real(where) as listing:
            entries = list(listing)
        if {e.name for e in entries} == {"notes.txt", "sub"} and not swapped:
            swapped.append(True)
            (volume / "link").symlink_to(data / "llmos.db")
            (volume / "link").rename(volume / "notes.txt")
            (volume / "sub").rename(volume / "old-sub")
            (volume / "sub").symlink_to(data)
        return _Listing(entries)

    monkeypatch.setattr(os, "scandir", scandir)
    snapshot = tmp_path / "snapshot"
    _copy(volume, snapshot)
    assert swapped
    assert (snapshot / "notes.txt").readlink() == data / "llmos.db"
    assert (snapshot / "sub").readlink() == data


def test_a_folder_swapped_for_a_link_while_usage_is_measured_is_not_followed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The same as the usage is measured: a folder swapped for a link to the data dir just as
    the walk goes into it by name does not count the data dir's files."""
    data, volume = _volume(tmp_path)
    real = os.scandir

    def scandir(where: Any = ".") -> _Listing:
        if isinstance(where, str | Path) and Path(where) == volume / "sub":
            (volume / "sub").rename(volume / "old-sub")
            (volume / "sub").symlink_to(data)
        with real(where) as listing:
            return _Listing(list(listing))

    monkeypatch.setattr(os, "scandir", scandir)
    assert _du(volume) < 100_000, "the usage counts what a link swapped in names"
