"""Odd host files under ``--root``: malformed, missing or unreadable files never crash a check.

Each test runs the command as a user does and looks at what it prints: no
check may end as "a bug in llmos preflight", and what a check can still see
(a kubelet process next to a garbled ``/proc/net/tcp``) must still be found.
"""

from __future__ import annotations

import json

import typer
from typer.testing import CliRunner

from llmos.cli import preflight as preflight_cli

from .hosttree import HostTree

BUG = "bug in llmos preflight"


def _app() -> typer.Typer:
    app = typer.Typer()

    @app.callback()
    def _root() -> None:
        """Two commands' worth of app, so `preflight` is a sub-command."""

    preflight_cli.register(app)
    return app


def _run(tree: HostTree, *args: str) -> tuple[int, dict[str, dict[str, object]], str]:
    base = ["preflight", "--root", str(tree.root), "--data-dir", str(tree.data_dir), "--quick"]
    result = CliRunner().invoke(_app(), [*base, "-o", "json", *args])
    report = json.loads(result.stdout)
    return result.exit_code, {r["id"]: r for r in report["results"]}, result.output


def test_garbled_proc_net_tcp_still_finds_kubelet_and_crashes_nothing(tree: HostTree) -> None:
    tree.process(123, "kubelet", "/usr/bin/kubelet")
    tree.write(
        "/proc/net/tcp",
        "  sl  local_address rem_address   st\n"
        "   0: ZZZZ:00 00:00 0A 0 0 0 0 0 notanint\n"
        "   1: 0100007F:1F90\n"
        "   2: 0100007F:ZZZZ 00000000:0000 0A 00000000:00000000 00:00000000 00000000 0 0 9 1\n",
    )
    tree.write("/proc/net/tcp6", "  sl  local_address\n   0: 0000:1F90 0:0 0A 0 0 0 0 0 0 77\n")
    code, results, _ = _run(
        tree, "--check", "kubernetes", "--check", "ports", "--check", "nodeport-range"
    )
    assert code == 1
    assert results["kubernetes"]["status"] == "fail"
    assert "process kubelet (pid 123)" in str(results["kubernetes"]["measured"])
    for result in results.values():
        assert BUG not in str(result["fix"]), result


def test_garbled_meminfo_is_reported_unknown_not_a_crash(tree: HostTree) -> None:
    tree.write("/proc/meminfo", "MemTotal: lots kB\n")
    code, results, _ = _run(tree, "--check", "memory")
    memory = results["memory"]
    assert code == 0
    assert memory["status"] == "warn"
    assert BUG not in str(memory["fix"])
    assert f"no readable MemTotal in {tree.root}/proc/meminfo" in str(memory["measured"])


def test_missing_proc_files_under_a_fixture_root_are_not_read_from_this_machine(
    tree: HostTree,
) -> None:
    for name in ("proc/cpuinfo", "proc/meminfo", "proc/sys/kernel/arch"):
        (tree.root / name).unlink()
    code, results, _ = _run(tree, "--check", "arch", "--check", "cpu", "--check", "memory")
    assert code == 0
    for check_id, path in (
        ("arch", "proc/sys/kernel/arch"),
        ("cpu", "proc/cpuinfo"),
        ("memory", "proc/meminfo"),
    ):
        assert results[check_id]["status"] == "warn"
        assert str(tree.root / path) in str(results[check_id]["measured"])
        assert results[check_id]["fix"]


def test_os_release_without_an_id_says_so(tree: HostTree) -> None:
    tree.write("/etc/os-release", 'garbage\x00\nID\nVERSION_ID="20.04\n=x\n')
    code, results, _ = _run(tree, "--check", "os")
    os_result = results["os"]
    assert code == 0
    assert os_result["status"] == "warn"
    assert "unknown distribution" in str(os_result["measured"])
    assert not str(os_result["fix"]).startswith(" ")
    assert "ID=" in str(os_result["fix"])


def test_os_release_that_is_a_directory_warns(tree: HostTree) -> None:
    (tree.root / "etc/os-release").unlink()
    tree.mkdir("/etc/os-release")
    _, results, _ = _run(tree, "--check", "os")
    assert results["os"]["status"] == "warn"
    assert "no /etc/os-release" in str(results["os"]["measured"])


def test_a_warning_fix_does_not_ask_for_what_the_node_already_has(tree: HostTree) -> None:
    tree.cpus(6).memory_kb(20 * 1024 * 1024)
    _, results, _ = _run(tree, "--check", "cpu", "--check", "memory")
    assert results["cpu"]["status"] == "warn" and results["memory"]["status"] == "warn"
    assert "at least 4" not in str(results["cpu"]["fix"])
    assert "8 cores" in str(results["cpu"]["fix"])
    assert "at least 16" not in str(results["memory"]["fix"])
    assert "32 GB" in str(results["memory"]["fix"])
