"""``llmos install`` / ``llmos uninstall`` as a user runs them, against a fixture root.

Every run here passes ``--root`` (files under a temp folder, no command run) or
``--dry-run``: the tests run as root on some machines and must never install
k3s for real.
"""

from __future__ import annotations

import os
import re
import stat
from pathlib import Path

import pytest
import yaml

from cli.runner import Result, assert_fails, run_cli
from llmos._lib.jointoken import ca_hash
from llmos.install.errors import StepFailed
from llmos.install.execute import execute
from llmos.install.plan import Remove, Run, Step, WriteFile

TOKEN = "a-long-shared-cluster-token"
FIRST = ("install", "--cluster-init", "--token", TOKEN, "--skip-preflight")


def llmos(tmp_path: Path, *args: str, env: dict[str, str] | None = None) -> Result:
    return run_cli(tmp_path / "home", *args, env=env)


def written(dry_run: str, path: str) -> str:
    """The content a dry run shows for the file at ``path``."""
    after = dry_run.split(f"write {path} (mode ", 1)[1].split("\n", 1)[1]
    return re.split(r"\n# \d+\. ", after, maxsplit=1)[0]


def files_under(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())


def test_dry_run_prints_every_file_and_command_and_changes_nothing(tmp_path: Path) -> None:
    root = tmp_path / "root"
    root.mkdir()
    result = llmos(tmp_path, *FIRST, "--dry-run", "--root", str(root), "--node-name", "gpu-1")
    assert result.code == 0, result
    for expected in (
        "write /etc/rancher/k3s/config.yaml (mode 0600)",
        "write /etc/systemd/system/k3s.service",
        "write /var/lib/rancher/k3s/server/manifests/llmos.yaml (mode 0600)",
        "write /etc/llmos/bootstrap-password (mode 0600)",
        "write /etc/llmos/join-token (mode 0600)",
        "curl -sfL https://get.k3s.io | sh -",
        "systemctl enable --now k3s",
        "node-name: gpu-1",
        "kind: CustomResourceDefinition",
        "name: llmos-bootstrap",
        "Dry run: nothing was changed.",
    ):
        assert expected in result.stdout, expected
    # No secret is generated for a dry run, so none can leak into a terminal or a log;
    # the one given (--token) is hidden wherever it would go.
    assert "<generated at install>" in result.stdout
    assert "BEGIN" not in result.stdout
    assert TOKEN not in result.stdout and TOKEN not in result.stderr
    hidden = "<hidden-cluster-token>"
    assert yaml.safe_load(written(result.stdout, "/etc/rancher/k3s/config.yaml"))["token"] == hidden
    deployed = yaml.safe_load_all(
        written(result.stdout, "/var/lib/rancher/k3s/server/manifests/llmos.yaml")
    )
    secrets = {o["metadata"]["name"]: o for o in deployed if o["kind"] == "Secret"}
    assert secrets["llmos-cluster-token"]["stringData"] == {"token": hidden}
    assert written(result.stdout, "/etc/llmos/join-token").strip().endswith(f"::{hidden}")
    assert files_under(root) == []


def test_install_under_a_fixture_root_writes_files_and_prints_the_join_token(
    tmp_path: Path,
) -> None:
    root = tmp_path / "root"
    result = llmos(
        tmp_path,
        *FIRST,
        "--root", str(root),
        "--node-name", "gpu-1",
        "--label", "llmos.ai/gpu=true",
        "--taint", "nvidia.com/gpu=present:NoSchedule",
        "--tls-san", "llmos.example.com",
    )  # fmt: skip
    assert result.code == 0, result
    assert (
        "[1/10] not run" in result.stdout and "wrote /etc/rancher/k3s/config.yaml" in result.stdout
    )
    config = yaml.safe_load((root / "etc/rancher/k3s/config.yaml").read_text())
    assert config["cluster-init"] is True and config["token"] == TOKEN
    assert config["node-label"] == ["llmos.ai/gpu=true"]
    assert config["tls-san"] == ["llmos.example.com"]
    objects = list(
        yaml.safe_load_all((root / "var/lib/rancher/k3s/server/manifests/llmos.yaml").read_text())
    )
    secrets = {o["metadata"]["name"]: o for o in objects if o["kind"] == "Secret"}
    password = secrets["llmos-bootstrap"]["stringData"]["password"]
    ca = secrets["llmos-tls"]["stringData"]["ca.crt"]
    assert secrets["llmos-cluster-token"]["stringData"]["token"] == TOKEN
    join_token = f"K10{ca_hash(ca.encode())}::{TOKEN}"
    assert (root / "etc/llmos/join-token").read_text().strip() == join_token
    assert (root / "etc/llmos/bootstrap-password").read_text().strip() == password
    for path in ("etc/llmos/join-token", "etc/llmos/bootstrap-password"):
        assert stat.S_IMODE((root / path).stat().st_mode) == 0o600
    # Printed once, at the end, with where to find them again.
    assert join_token in result.stdout and password in result.stdout
    cert = secrets["llmos-tls"]["stringData"]["tls.crt"]
    from cryptography import x509

    names = (
        x509.load_pem_x509_certificate(cert.encode())
        .extensions.get_extension_for_class(x509.SubjectAlternativeName)
        .value.get_values_for_type(x509.DNSName)
    )
    assert {"llmos.example.com", "gpu-1", "llmos-server.llmos-system.svc"} <= set(names)


def test_config_file_env_and_flags_in_that_order(tmp_path: Path) -> None:
    root = tmp_path / "root"
    (root / "etc/llmos").mkdir(parents=True)
    (root / "etc/llmos/config.yaml").write_text(
        yaml.safe_dump(
            {
                "role": "agent",
                "server": "https://10.0.0.1:6443",
                "token": TOKEN,
                "nodeName": "from-file",
                "address": "203.0.113.1",
                "labels": {"zone": "a"},
                # llmos server's, in the node's one file: passed over here.
                "port": 8443,
                "logFormat": "json",
            }
        )
    )
    # The file asks to join a server: make it the first server from the flags instead.
    result = llmos(
        tmp_path,
        "install", "--skip-preflight", "--root", str(root),
        "--cluster-init", "--role", "server", "--server", "",
        "--address", "203.0.113.9",
        env={"LLMOS_NODE_NAME": "from-env", "LLMOS_TLS_SANS": "a.example.com,b.example.com"},
    )  # fmt: skip
    assert result.code == 0, result
    config = yaml.safe_load((root / "etc/rancher/k3s/config.yaml").read_text())
    assert config["node-name"] == "from-env"
    assert config["node-external-ip"] == "203.0.113.9"
    assert config["node-label"] == ["zone=a"]
    assert config["tls-san"] == ["a.example.com", "b.example.com"]


@pytest.mark.parametrize(
    ("args", "config", "fragments"),
    [
        ((), {"tokn": TOKEN}, ("unknown config key 'tokn'", "known keys")),
        (("--role", "banana"), None, ("role (--role / LLMOS_ROLE / config key role)", "banana")),
        (("--taint", "gpu"), None, ("key[=value]:Effect",)),
        (("--label", "novalue"), None, ("--label 'novalue' must be KEY=VALUE",)),
        (("--server", "https://a:6443"), None, ("server", "must be empty")),
        (("--config", "/nonexistent/llmos.yaml"), None, ("config file /nonexistent/llmos.yaml",)),
        (("--airgap-dir", "/nonexistent"), None, ("--airgap-dir /nonexistent is not a folder",)),
    ],
)
def test_bad_input_is_a_clear_usage_error(
    tmp_path: Path, args: tuple[str, ...], config: dict[str, str] | None, fragments: tuple[str, ...]
) -> None:
    root = tmp_path / "root"
    if config is not None:
        (root / "etc/llmos").mkdir(parents=True)
        (root / "etc/llmos/config.yaml").write_text(yaml.safe_dump(config))
        base: tuple[str, ...] = ("install", "--cluster-init", "--skip-preflight")
    else:
        base = FIRST
    result = llmos(tmp_path, *base, "--root", str(root), "--dry-run", *args)
    # One error line, possibly followed by "  - problem" lines; no traceback.
    assert_fails(result, 2)
    for fragment in fragments:
        assert fragment in result.stderr, result.stderr


def test_missing_token_names_the_flag(tmp_path: Path) -> None:
    result = llmos(tmp_path, "install", "--cluster-init", "--dry-run", "--root", str(tmp_path))
    assert_fails(result, 2, "token (--token / LLMOS_TOKEN / config key token)", "Field required")


def test_preflight_failures_refuse_the_install_naming_the_checks(tmp_path: Path) -> None:
    root = tmp_path / "root"
    (root / "etc/kubernetes").mkdir(parents=True)  # another Kubernetes is on this "host"
    result = llmos(tmp_path, "install", "--cluster-init", "--token", TOKEN, "--root", str(root))
    assert_fails(result, 1, "preflight checks failed", "kubernetes")
    assert "No existing Kubernetes" in result.stderr and "--skip-preflight" in result.stderr
    assert not (root / "etc/rancher").exists()
    # A dry run shows the same failures and goes on.
    dry = llmos(
        tmp_path, "install", "--cluster-init", "--token", TOKEN, "--root", str(root), "--dry-run"
    )
    assert dry.code == 0 and "a real install would stop here" in dry.stderr


def test_a_real_run_needs_root(monkeypatch: pytest.MonkeyPatch) -> None:
    # In-process, as a non-root user: and should the check ever break, nothing runs anyway.
    from typer.testing import CliRunner

    import llmos.cli.install as command
    from llmos.cli.main import app

    ran: list[object] = []
    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    monkeypatch.setattr(command, "execute", lambda *args, **kwargs: ran.append(args))
    for args in (list(FIRST), ["uninstall"]):
        result = CliRunner().invoke(app, args)
        assert result.exit_code == 1, result.output
        assert "error: llmos" in result.output and "run it as root" in result.output
        assert "--dry-run" in result.output
    assert ran == []


def test_uninstall_removes_what_install_wrote(tmp_path: Path) -> None:
    root = tmp_path / "root"
    assert llmos(tmp_path, *FIRST, "--root", str(root)).code == 0
    script = root / "usr/local/bin/k3s-uninstall.sh"
    script.parent.mkdir(parents=True)
    script.write_text("#!/bin/sh\n")
    dry = llmos(tmp_path, "uninstall", "--dry-run", "--root", str(root))
    assert dry.code == 0 and "rm -rf /etc/llmos" in dry.stdout and "k3s-uninstall.sh" in dry.stdout
    assert (root / "etc/llmos/join-token").exists()
    result = llmos(tmp_path, "uninstall", "--root", str(root))
    assert result.code == 0, result
    assert "not run (files only" in result.stdout and "k3s-uninstall.sh" in result.stdout
    assert "skipped" in result.stdout  # the agent's script is not there
    assert files_under(root) == ["usr/local/bin/k3s-uninstall.sh"]
    again = llmos(tmp_path, "uninstall", "--root", str(root))
    assert again.code == 0 and "already gone" in again.stdout


def test_execute_stops_at_the_first_failing_command(tmp_path: Path) -> None:
    lines: list[str] = []
    steps: list[Step] = [
        WriteFile("/a.txt", "a\n"),
        Run(("sh", "-c", f"echo ran > {tmp_path}/ran"), "first command"),
        Run(("sh", "-c", "exit 3"), "a failing command"),
        WriteFile("/b.txt", "b\n"),
    ]
    with pytest.raises(StepFailed) as info:
        execute(steps, tmp_path, run_commands=True, echo=lines.append)
    assert "[3/4] (a failing command) failed with exit code 3" in str(info.value)
    assert (tmp_path / "ran").exists() and not (tmp_path / "b.txt").exists()
    with pytest.raises(StepFailed, match="could not start"):
        execute([Run(("/nonexistent/cmd",), "x")], tmp_path, run_commands=True, echo=lines.append)
    execute([Remove("/a.txt", "a file")], tmp_path, run_commands=True, echo=lines.append)
    assert not (tmp_path / "a.txt").exists() and lines[-1].endswith("removed /a.txt (a file)")
