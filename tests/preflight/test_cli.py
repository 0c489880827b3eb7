"""``llmos preflight`` through Typer: JSON schema, exit codes and usage errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from llmos.cli import preflight as preflight_cli
from llmos.preflight import CHECK_IDS

from .hosttree import NVML_FIXTURES, HostTree

RESULT_KEYS = {"id", "title", "status", "measured", "required", "fix", "reason", "data"}
REPORT_KEYS = {
    "apiVersion",
    "kind",
    "mode",
    "role",
    "hostname",
    "root",
    "dataDir",
    "durationSeconds",
    "summary",
    "results",
}


@pytest.fixture
def app() -> typer.Typer:
    app = typer.Typer()

    @app.callback()
    def _root() -> None:
        """The main app has several commands; so does this one."""

    preflight_cli.register(app)
    return app


def _invoke(app: typer.Typer, tree: HostTree, *args: str) -> tuple[int, str]:
    base = ["preflight", "--root", str(tree.root), "--data-dir", str(tree.data_dir), "--quick"]
    result = CliRunner().invoke(app, [*base, *args])
    return result.exit_code, result.output


HOST_CHECKS = ["--check", "arch", "--check", "os", "--check", "cpu", "--check", "memory"]


def test_json_schema_is_stable(app: typer.Typer, tree: HostTree) -> None:
    code, output = _invoke(app, tree, "-o", "json")
    report = json.loads(output)
    assert set(report) == REPORT_KEYS
    assert report["apiVersion"] == "preflight.llmos.ai/v1"
    assert report["kind"] == "PreflightReport"
    assert set(report["summary"]) == {"verdict", "pass", "warn", "fail", "skip"}
    assert [r["id"] for r in report["results"]] == list(CHECK_IDS)
    for result in report["results"]:
        assert set(result) == RESULT_KEYS
        assert result["status"] in {"pass", "warn", "fail", "skip"}
        if result["status"] == "skip":
            assert result["reason"]
        if result["status"] in {"warn", "fail"}:
            assert result["fix"]
    assert code == (1 if report["summary"]["fail"] else 0)


def test_exit_code_zero_when_nothing_fails(app: typer.Typer, tree: HostTree) -> None:
    tree.memory_kb(20 * 1024 * 1024)  # warns
    code, output = _invoke(app, tree, *HOST_CHECKS, "-o", "json")
    assert code == 0
    assert json.loads(output)["summary"]["verdict"] == "warn"


def test_exit_code_one_when_a_check_fails(app: typer.Typer, tree: HostTree) -> None:
    tree.os_release("ubuntu", "18.04")
    code, output = _invoke(app, tree, *HOST_CHECKS)
    assert code == 1
    assert "FAIL" in output and "Upgrade to Ubuntu 20.04 or newer" in output


def test_embedded_mode_on_a_small_box_exits_zero(app: typer.Typer, tree: HostTree) -> None:
    tree.cpus(2).memory_kb(8 * 1024 * 1024)
    code, _ = _invoke(app, tree, *HOST_CHECKS, "--mode", "embedded")
    assert code == 0


@pytest.mark.parametrize(
    "args",
    [
        ["--role", "captain"],
        ["--server", "https://127.0.0.1:1"],
        ["--check", "no-such-check"],
        ["--listen", "--peer", "10.0.0.1"],
        ["--ca-cert", "/nonexistent/ca.pem", "--server", "https://x", "--token", "t"],
        ["--output", "xml"],
        ["--peer", "127.0.0.1", "--check", "no-such-check"],
        ["--peer", "127.0.0.1", "--check", "arch"],
        ["--peer", "127.0.0.1", "--server", "https://127.0.0.1:1"],
        ["--peer", "127.0.0.1", "--ca-cert", "/nonexistent/ca.pem"],
        ["--listen", "--listen-timeout", "0.1", "--token", "t"],
        ["--listen", "--listen-timeout", "0.1", "--check", "ports"],
    ],
)
def test_usage_errors_exit_two(app: typer.Typer, tree: HostTree, args: list[str]) -> None:
    code, output = _invoke(app, tree, *args)
    assert code == 2
    assert "Reachability" not in output and "Temporary listeners" not in output


def test_peer_mode_checks_the_root_like_any_run(app: typer.Typer, tmp_path: Path) -> None:
    args = ["preflight", "--peer", "127.0.0.1", "--root", str(tmp_path / "nope")]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 2
    assert "--root" in result.output and "not a directory" in result.output


def test_nvml_recording_flag_feeds_the_gpu_check(app: typer.Typer, tree: HostTree) -> None:
    tree.pci_device("0000:18:00.0", 0x10DE, 0x2330, 0x030200, "nvidia")
    tree.nvidia_driver("550.54.15")
    recording = NVML_FIXTURES / "tesla-m60-cc52.json"
    code, output = _invoke(
        app, tree, "--check", "gpu", "-o", "json", "--nvml-recording", str(recording)
    )
    assert code == 1
    assert json.loads(output)["results"][0]["data"]["nvml"]["devices"][0]["name"] == "Tesla M60"


def test_yaml_output(app: typer.Typer, tree: HostTree) -> None:
    code, output = _invoke(app, tree, "--check", "arch", "-o", "yaml")
    assert code == 0
    assert "kind: PreflightReport" in output


def test_firewalld_lines_are_printed_in_the_table(app: typer.Typer, tree: HostTree) -> None:
    tree.process(700, "firewalld", "/usr/sbin/firewalld")
    code, output = _invoke(app, tree, "--check", "firewalld")
    assert code == 0
    assert "firewall-cmd --permanent --add-port=8472/udp" in output
    assert "firewall-cmd --reload" in output


def test_main_app_registers_preflight() -> None:
    from llmos.cli.main import app as main_app

    names = [c.name for c in main_app.registered_commands]
    assert "preflight" in names


def test_root_must_be_a_directory(app: typer.Typer, tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["preflight", "--root", str(tmp_path / "nope")])
    assert result.exit_code == 2


def test_agent_is_the_worker_role_as_install_calls_it(
    app: typer.Typer, tree: HostTree, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``LLMOS_ROLE=agent``, exported for ``llmos install``, serves preflight too."""
    monkeypatch.setenv("LLMOS_ROLE", "agent")
    code, output = _invoke(app, tree, *HOST_CHECKS, "-o", "json")
    assert code in (0, 1), output
    assert json.loads(output)["role"] == "worker"
