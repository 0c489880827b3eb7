"""The tables ``llmos get`` prints, from objects as the server returns them."""

from __future__ import annotations

from typing import Any

import pytest

from llmos.cli import output
from llmos.cli.serving import _downloaded


def _ms(engine: str, running: str | None) -> dict[str, Any]:
    status = {"phase": "Ready", "readyReplicas": 1} | ({"engine": running} if running else {})
    return {
        "metadata": {"name": "smollm2", "namespace": "llmos-public"},
        "spec": {"model": "bundled:smollm2", "engine": engine, "replicas": 1},
        "status": status,
    }


def _rows(capsys: pytest.CaptureFixture[str], items: list[dict[str, Any]], kind: str) -> list[str]:
    output.print_objects(items, kind, "table")
    return capsys.readouterr().out.splitlines()


@pytest.mark.parametrize(
    ("engine", "running", "shown"),
    [
        ("auto", "llama-cpp", "llama-cpp (auto)"),  # what `llmos run` makes
        ("vllm", "vllm", "vllm"),
        ("auto", None, "auto"),  # not started yet
        ("auto", "external", "external"),  # spec.endpoint: served elsewhere
    ],
)
def test_the_engine_column_shows_the_engine_that_runs(
    capsys: pytest.CaptureFixture[str], engine: str, running: str | None, shown: str
) -> None:
    header, row = _rows(capsys, [_ms(engine, running)], "ModelService")
    assert header.split()[:3] == ["NAME", "MODEL", "ENGINE"]
    assert row.startswith(f"smollm2   bundled:smollm2   {shown} ")


def test_a_download_shows_how_far_it_is(capsys: pytest.CaptureFixture[str]) -> None:
    ms = _ms("auto", None)
    ms["status"] = {
        "phase": "Downloading",
        "downloadProgress": {"model": "org/big", "percent": 42, "downloadedBytes": 42},
    }
    header, row = _rows(capsys, [ms], "ModelService")
    assert header.split()[3:5] == ["READY", "STATUS"]
    assert row.split()[3:6] == ["0/1", "Downloading", "42%"]


def test_node_memory_is_shown_in_binary_units(capsys: pytest.CaptureFixture[str]) -> None:
    node = {
        "metadata": {"name": "gpu-1"},
        "status": {"phase": "Ready", "capacity": {"cpu": "16", "memory": "24684096Ki"}},
    }
    header, row = _rows(capsys, [node], "Node")
    assert header.split()[:5] == ["NAME", "STATUS", "CPU", "MEMORY", "RESERVED"]
    assert row.split()[:5] == ["gpu-1", "Ready", "16", "23.5Gi", "-"]

    node["status"]["allocated"] = {"cpu": "1500m", "memory": "3Gi"}
    header, row = _rows(capsys, [node], "Node")
    assert row.split()[:7] == ["gpu-1", "Ready", "16", "23.5Gi", "1.5", "CPU,", "3.0Gi"]


def test_gpu_memory_is_shown_in_binary_units(capsys: pytest.CaptureFixture[str]) -> None:
    gpu = {
        "metadata": {"name": "gpu-1-0"},
        "spec": {"nodeName": "gpu-1"},
        "status": {"index": 0, "product": "H200", "memoryTotalBytes": 150_754_820_096},
    }
    header, row = _rows(capsys, [gpu], "GPUDevice")
    assert header.split()[:5] == ["NAME", "NODE", "INDEX", "PRODUCT", "MEMORY"]
    assert row.split()[:5] == ["gpu-1-0", "gpu-1", "0", "H200", "140.4Gi"]


@pytest.mark.parametrize(
    ("quantity", "shown"),
    [
        ("24684096Ki", "23.5Gi"),
        ("16Gi", "16.0Gi"),
        ("512Mi", "512.0Mi"),
        (2 * 2**40, "2.0Ti"),
        ("1000", "1000"),
        (None, ""),
        ("lots", "lots"),  # not a quantity: shown as it is rather than hidden
    ],
)
def test_size(quantity: str | int | None, shown: str) -> None:
    assert output.size(quantity) == shown


def test_a_watch_prints_the_header_once_and_keeps_the_columns(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """``llmos get -w``: later rows line up under the first table, with no trailing spaces."""
    first = _ms("auto", "llama-cpp")
    table = output.print_objects([first], "ModelService", "table")
    changed = _ms("auto", "llama-cpp")
    changed["metadata"]["name"] = "a-much-longer-name-than-before"
    changed["status"]["message"] = "two\nlines"
    output.print_objects([first], "ModelService", "table", as_list=False, table=table)
    output.print_objects([changed], "ModelService", "table", as_list=False, table=table)
    header, row, again, longer = capsys.readouterr().out.splitlines()
    assert header.startswith("NAME      MODEL")
    assert again == row  # the same object, the same line
    assert longer.startswith("a-much-longer-name-than-before   bundled:smollm2")
    assert "NAME" not in again + longer
    for line in (header, row, again, longer):
        assert line == line.rstrip()
        assert "\n" not in line
    # Its MODEL column is where the header's is, as far as the name allows.
    assert row.index("bundled:smollm2") == header.index("MODEL")


def test_a_download_in_a_few_words() -> None:
    assert _downloaded({"downloadedBytes": 0, "totalBytes": 0, "percent": 0.0}) == "0 MiB so far"
    held = {"downloadedBytes": 30 * 2**20, "totalBytes": 138 * 2**20, "percent": 21.7}
    assert _downloaded(held) == "21% of 138 MiB"
    assert _downloaded({"downloadedBytes": 5 * 2**30, "totalBytes": 16 * 2**30}) == (
        "31% of 16,384 MiB"
    )
