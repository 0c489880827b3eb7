"""Operating system check: every distribution row on both sides of its boundary."""

from __future__ import annotations

import pytest

from llmos.preflight import Status, run_preflight

from .hosttree import HostTree

BOUNDARIES = [
    ("ubuntu", "18.04", Status.FAIL),
    ("ubuntu", "20.04", Status.PASS),
    ("ubuntu", "24.04", Status.PASS),
    ("rhel", "8.4", Status.FAIL),
    ("rhel", "8.5", Status.PASS),
    ("rhel", "9.3", Status.PASS),
    ("sles", "15.2", Status.FAIL),
    ("sles", "15.3", Status.PASS),
    ("opensuse-leap", "15.2", Status.FAIL),
    ("opensuse-leap", "15.3", Status.PASS),
    ("rocky", "8.4", Status.FAIL),
    ("rocky", "8.5", Status.PASS),
    ("debian", "10", Status.FAIL),
    ("debian", "11", Status.PASS),
    ("fedora", "36", Status.FAIL),
    ("fedora", "37", Status.PASS),
]


@pytest.mark.parametrize(("os_id", "version", "expected"), BOUNDARIES)
def test_distribution_boundaries(
    tree: HostTree, os_id: str, version: str, expected: Status
) -> None:
    tree.os_release(os_id, version)
    result = run_preflight(tree.options(), only=["os"]).result("os")
    assert result.status is expected, result
    assert result.data["versionId"] == version
    if expected is Status.FAIL:
        assert result.fix is not None and "Upgrade to" in result.fix


def test_unlisted_distribution_warns_not_officially_tested(tree: HostTree) -> None:
    tree.os_release("arch", None)
    result = run_preflight(tree.options(), only=["os"]).result("os")
    assert result.status is Status.WARN
    assert result.reason == "not officially tested"


def test_missing_os_release_warns(tree: HostTree) -> None:
    (tree.root / "etc/os-release").unlink()
    result = run_preflight(tree.options(), only=["os"]).result("os")
    assert result.status is Status.WARN


def test_usr_lib_os_release_is_the_fallback(tree: HostTree) -> None:
    (tree.root / "etc/os-release").unlink()
    tree.write("/usr/lib/os-release", 'ID=debian\nVERSION_ID="12"\nPRETTY_NAME="Debian 12"\n')
    assert run_preflight(tree.options(), only=["os"]).result("os").status is Status.PASS


def test_listed_distribution_without_version_warns(tree: HostTree) -> None:
    tree.write("/etc/os-release", 'ID=debian\nPRETTY_NAME="Debian trixie/sid"\n')
    result = run_preflight(tree.options(), only=["os"]).result("os")
    assert result.status is Status.WARN
