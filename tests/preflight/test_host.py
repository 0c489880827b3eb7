"""Architecture, CPU, memory and disk space checks, and the embedded-mode relaxations."""

from __future__ import annotations

from pathlib import Path

import pytest

from llmos.preflight import Mode, Status, run_preflight
from llmos.preflight.checks._thresholds import GB, judge
from llmos.preflight.checks.disk_space import MINIMUM, RECOMMENDED
from llmos.preflight.diskbench.target import existing_ancestor

from .hosttree import HostTree

GIB_KB = 1024 * 1024


@pytest.mark.parametrize(
    ("machine", "expected"),
    [
        ("x86_64", Status.PASS),
        ("aarch64", Status.PASS),
        ("arm64", Status.PASS),
        ("riscv64", Status.FAIL),
        ("ppc64le", Status.FAIL),
        ("s390x", Status.FAIL),
    ],
)
def test_architecture(tree: HostTree, machine: str, expected: Status) -> None:
    tree.arch(machine)
    result = run_preflight(tree.options(), only=["arch"]).result("arch")
    assert result.status is expected
    assert result.measured == machine


def test_arm64_host_passes_every_host_check(tree: HostTree) -> None:
    tree.arch("aarch64").os_release("ubuntu", "22.04")
    report = run_preflight(tree.options(), only=["arch", "os", "cpu", "memory", "gpu", "hostname"])
    assert [r.status for r in report.results] == [Status.PASS] * 6, report.results


@pytest.mark.parametrize(
    ("cores", "expected"),
    [(2, Status.FAIL), (3, Status.FAIL), (4, Status.WARN), (7, Status.WARN), (8, Status.PASS)],
)
def test_cpu_cores(tree: HostTree, cores: int, expected: Status) -> None:
    tree.cpus(cores)
    result = run_preflight(tree.options(), only=["cpu"]).result("cpu")
    assert result.status is expected
    assert result.data["cores"] == cores


@pytest.mark.parametrize(
    ("kilobytes", "expected"),
    [
        (8 * GIB_KB, Status.FAIL),
        (15_000_000, Status.FAIL),  # a "16 GB" box never reports less than 16 * 10^9 bytes
        (16_202_000, Status.WARN),  # MemTotal of a typical 16 GiB machine
        (32 * GIB_KB - 400_000, Status.PASS),
        (64 * GIB_KB, Status.PASS),
    ],
)
def test_memory(tree: HostTree, kilobytes: int, expected: Status) -> None:
    tree.memory_kb(kilobytes)
    result = run_preflight(tree.options(), only=["memory"]).result("memory")
    assert result.status is expected, result.measured


@pytest.mark.parametrize(
    ("size", "expected"),
    [
        (MINIMUM - 1, Status.FAIL),
        (MINIMUM, Status.WARN),
        (RECOMMENDED - 1, Status.WARN),
        (RECOMMENDED, Status.PASS),
    ],
)
def test_disk_space_boundaries(size: int, expected: Status) -> None:
    assert judge(size, MINIMUM, RECOMMENDED) is expected


def test_disk_space_measures_the_data_dirs_filesystem(tree: HostTree) -> None:
    result = run_preflight(tree.options(), only=["disk-space"]).result("disk-space")
    assert result.data["path"] == str(existing_ancestor(tree.data_dir))
    assert result.data["totalBytes"] > 0
    assert result.status in {Status.PASS, Status.WARN, Status.FAIL}


def test_existing_ancestor_walks_up_to_an_existing_dir(tmp_path: Path) -> None:
    assert existing_ancestor(tmp_path / "a" / "b" / "c") == tmp_path


def test_embedded_mode_downgrades_hardware_failures(tree: HostTree) -> None:
    tree.cpus(2).memory_kb(4 * GIB_KB)
    cluster = run_preflight(tree.options(), only=["cpu", "memory"])
    assert [r.status for r in cluster.results] == [Status.FAIL, Status.FAIL]
    embedded = run_preflight(tree.options(mode=Mode.EMBEDDED), only=["cpu", "memory"])
    assert [r.status for r in embedded.results] == [Status.WARN, Status.WARN]
    assert embedded.ok
    assert all("embedded mode" in (r.reason or "") for r in embedded.results)


def test_embedded_mode_skips_cluster_only_checks(tree: HostTree) -> None:
    tree.mkdir("/var/lib/rancher/k3s")
    report = run_preflight(tree.options(mode=Mode.EMBEDDED), only=["kubernetes", "hostname-unique"])
    assert [r.status for r in report.results] == [Status.SKIP, Status.SKIP]
    assert report.ok


def test_embedded_mode_still_fails_an_unsupported_architecture(tree: HostTree) -> None:
    tree.arch("riscv64")
    report = run_preflight(tree.options(mode=Mode.EMBEDDED), only=["arch"])
    assert report.failures and report.exit_code == 1


def test_gb_is_decimal() -> None:
    assert GB == 10**9
