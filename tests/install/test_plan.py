"""The installer's plan without touching the host: k3s config, unit, manifests, dry run."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest
import yaml
from pydantic import ValidationError

from llmos.install.config import K3S_VERSION, InstallConfig
from llmos.install.k3s import secure_token
from llmos.install.manifests import manifests
from llmos.install.plan import (
    Remove,
    Run,
    Step,
    WriteFile,
    describe,
    install_plan,
    uninstall_plan,
    write_file,
    write_files,
)
from llmos.install.secrets import HIDDEN, ClusterSecrets

TOKEN = "a-long-shared-cluster-token"
SERVER_CA_HASH = "cd" * 32
SECRETS = ClusterSecrets("admin-password-1", "CA PEM", "CERT PEM", "KEY PEM", TOKEN)


def first_server() -> InstallConfig:
    return InstallConfig.model_validate(
        {
            "clusterInit": True,
            "token": TOKEN,
            "nodeName": "gpu-1",
            "address": "203.0.113.10",
            "internalAddress": "10.0.0.10",
            "labels": {"llmos.ai/gpu": "true"},
            "taints": ["nvidia.com/gpu=present:NoSchedule"],
            "tlsSans": ["llmos.example.com"],
            "extraConfig": {"kube-apiserver-arg": ["audit-log-maxage=7"]},
        }
    )


def first_server_plan(**kwargs: object) -> list[Step]:
    return install_plan(first_server(), secrets=SECRETS, **kwargs)  # type: ignore[arg-type]


def test_the_first_server_writes_k3s_config_unit_and_manifests(tmp_path: Path) -> None:
    written = write_files(first_server_plan(), tmp_path)
    config = yaml.safe_load((tmp_path / "etc/rancher/k3s/config.yaml").read_text())
    assert config["cluster-init"] is True and "server" not in config
    assert config["token"] == TOKEN
    assert config["tls-san"] == ["llmos.example.com"]
    assert config["node-name"] == "gpu-1"
    assert (config["node-ip"], config["node-external-ip"]) == ("10.0.0.10", "203.0.113.10")
    assert config["node-label"] == ["llmos.ai/gpu=true"]
    assert config["node-taint"] == ["nvidia.com/gpu=present:NoSchedule"]
    assert config["write-kubeconfig"] == "/etc/llmos/kubeconfig.yaml"
    assert config["flannel-backend"] == "vxlan" and config["embedded-registry"] is True
    assert config["kube-apiserver-arg"] == ["audit-log-maxage=7"]
    mode = stat.S_IMODE((tmp_path / "etc/rancher/k3s/config.yaml").stat().st_mode)
    assert mode == 0o600, "the config holds the token"
    assert yaml.safe_load((tmp_path / "etc/rancher/k3s/registries.yaml").read_text()) == {
        "mirrors": {"*": {}}
    }
    unit = (tmp_path / "etc/systemd/system/k3s.service").read_text()
    assert "ExecStart=/usr/local/bin/k3s server" in unit and "Type=notify" in unit
    deployed = tmp_path / "var/lib/rancher/k3s/server/manifests/llmos.yaml"
    assert list(yaml.safe_load_all(deployed.read_text())) == manifests(secrets=SECRETS)
    assert deployed in written


def test_joining_nodes_name_the_server_and_deploy_nothing(tmp_path: Path) -> None:
    agent = InstallConfig(role="agent", server="https://10.0.0.10:6443", token=TOKEN)
    k3s_token = secure_token(SERVER_CA_HASH, TOKEN)
    steps = install_plan(agent, k3s_token=k3s_token)
    paths = {step.path for step in steps if isinstance(step, WriteFile)}
    assert not any("manifests" in path for path in paths)
    write_files(steps, tmp_path)
    config = yaml.safe_load((tmp_path / "etc/rancher/k3s/config.yaml").read_text())
    assert config == {"server": "https://10.0.0.10:6443", "token": k3s_token}
    unit = (tmp_path / "etc/systemd/system/k3s-agent.service").read_text()
    assert "ExecStart=/usr/local/bin/k3s agent" in unit
    assert steps[-1] == Run(
        ("systemctl", "enable", "--now", "k3s-agent"), "start k3s now and at boot"
    )


def test_online_and_air_gap_installs_of_the_pinned_k3s() -> None:
    online = first_server_plan()[0]
    assert isinstance(online, Run) and "curl -sfL https://get.k3s.io" in online.argv[-1]
    assert ("INSTALL_K3S_VERSION", K3S_VERSION) in online.env
    offline = first_server_plan(airgap_dir=Path("/srv/k3s"))
    commands = [" ".join(step.argv) for step in offline if isinstance(step, Run)]
    assert not any("curl" in command for command in commands)
    assert "install -m 0755 /srv/k3s/k3s /usr/local/bin/k3s" in commands
    script = next(s for s in offline if isinstance(s, Run) and s.argv[-1].endswith("install.sh"))
    assert ("INSTALL_K3S_SKIP_DOWNLOAD", "true") in script.env


def test_dry_run_shows_every_file_and_command() -> None:
    steps = first_server_plan()
    text = describe(steps)
    for step in steps:
        if isinstance(step, WriteFile):
            assert f"write {step.path}" in text
        elif isinstance(step, Run):
            assert step.why in text
    assert "k3s-uninstall.sh" in describe(uninstall_plan())


def test_a_dry_runs_plan_holds_no_secret() -> None:
    """--dry-run describes the plan of placeholder secrets: the given token is not in it."""
    text = describe(install_plan(first_server(), secrets=ClusterSecrets.placeholder()))
    assert TOKEN not in text
    config = yaml.safe_load(text.split("(mode 0600)\n", 1)[1].split("\n# ", 1)[0])
    assert config["token"] == HIDDEN
    assert f"token: {HIDDEN}" in text  # the llmos-cluster-token Secret
    assert f"::{HIDDEN}" in text  # /etc/llmos/join-token
    assert "<generated at install>" in text


def test_the_first_server_keeps_its_secrets_root_only(tmp_path: Path) -> None:
    write_files(first_server_plan(), tmp_path)
    for path in ("etc/llmos/bootstrap-password", "etc/llmos/join-token"):
        assert stat.S_IMODE((tmp_path / path).stat().st_mode) == 0o600
    assert (tmp_path / "etc/llmos/bootstrap-password").read_text() == "admin-password-1\n"
    assert (tmp_path / "etc/llmos/join-token").read_text() == SECRETS.join_token + "\n"
    assert SECRETS.join_token.startswith("K10") and SECRETS.join_token.endswith("::" + TOKEN)
    with pytest.raises(ValueError, match="ClusterSecrets"):
        install_plan(first_server())


def test_a_joining_nodes_plan_needs_k3s_token_from_the_handshake(tmp_path: Path) -> None:
    join_token = "K10" + "ab" * 32 + "::" + TOKEN
    agent = InstallConfig(role="agent", server="https://10.0.0.10:6443", token=join_token)
    with pytest.raises(ValueError, match="handshake"):
        install_plan(agent)
    # k3s' secure token: the k3s server CA's hash (not LLMOS's, in the join token), server user.
    assert secure_token(SERVER_CA_HASH, TOKEN) == f"K10{SERVER_CA_HASH}::server:{TOKEN}"
    write_files(install_plan(agent, k3s_token=secure_token(SERVER_CA_HASH, TOKEN)), tmp_path)
    config = yaml.safe_load((tmp_path / "etc/rancher/k3s/config.yaml").read_text())
    assert config["token"] == f"K10{SERVER_CA_HASH}::server:{TOKEN}"


def test_write_file_replaces_a_file_whole_with_its_new_mode(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = tmp_path / "etc/rancher/k3s/config.yaml"
    target.parent.mkdir(parents=True)
    target.write_text("token: old-and-longer-than-the-new-one\n")
    target.chmod(0o644)
    before = target.stat().st_ino
    modes: list[int] = []
    real_replace = os.replace

    def replace(src: str, dst: Path) -> None:
        # At the moment the new content takes the target's place: already 0600 and whole.
        modes.append(stat.S_IMODE(os.stat(src).st_mode))
        assert Path(src).parent == target.parent and Path(src).read_text() == "token: new\n"
        assert target.read_text() == "token: old-and-longer-than-the-new-one\n"
        real_replace(src, dst)

    monkeypatch.setattr(os, "replace", replace)
    write_file(WriteFile("/etc/rancher/k3s/config.yaml", "token: new\n", 0o600), tmp_path)
    assert modes == [0o600]
    assert target.read_text() == "token: new\n" and target.stat().st_ino != before
    assert stat.S_IMODE(target.stat().st_mode) == 0o600
    assert [p.name for p in target.parent.iterdir()] == ["config.yaml"]

    def fail(src: str, dst: Path) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", fail)
    with pytest.raises(OSError, match="No space"):
        write_file(WriteFile("/etc/rancher/k3s/config.yaml", "token: newer\n", 0o600), tmp_path)
    assert target.read_text() == "token: new\n"  # the old file stays as it was, no temp left
    assert [p.name for p in target.parent.iterdir()] == ["config.yaml"]


def test_uninstall_copes_with_either_role_and_half_installs() -> None:
    steps = uninstall_plan()
    scripts = [s for s in steps if isinstance(s, Run) and s.argv[0].endswith("uninstall.sh")]
    assert [s.only_if for s in scripts] == [s.argv[0] for s in scripts]
    assert {s.argv[0] for s in scripts} == {
        "/usr/local/bin/k3s-uninstall.sh",
        "/usr/local/bin/k3s-agent-uninstall.sh",
    }
    removed = {s.path for s in steps if isinstance(s, Remove)}
    assert {
        "/etc/llmos",
        "/etc/rancher/k3s",
        "/etc/systemd/system/k3s.service",
        "/etc/systemd/system/k3s-agent.service",
    } <= removed
    text = describe(steps)
    assert "rm -rf /etc/llmos" in text and "(if /usr/local/bin/k3s-uninstall.sh exists)" in text


@pytest.mark.parametrize(
    ("fields", "problem"),
    [
        ({"role": "agent", "clusterInit": True}, "clusterInit is for the first server"),
        ({}, "server is required"),
        ({"clusterInit": True, "server": "https://a:6443"}, "must be empty"),
        ({"server": "10.0.0.1"}, "must look like https://HOST:6443"),
        ({"clusterInit": True, "taints": ["gpu"]}, "key[=value]:Effect"),
        ({"clusterInit": True, "kubernetesVersion": "1.36"}, "must be a k3s release"),
        ({"clusterInit": True, "tlsSan": ["x"]}, "Extra inputs are not permitted"),
        ({"clusterInit": True, "token": "K10" + "ab" * 32 + "::" + TOKEN}, "plain shared secret"),
        ({"server": "https://a:6443", "token": "K10" + "ab" * 32 + "::short"}, "at least 16"),
        ({"server": "https://a:6443", "token": "K10abc::" + TOKEN}, "64 hex digits"),
    ],
)
def test_configs_that_cannot_work_are_refused(fields: dict[str, object], problem: str) -> None:
    with pytest.raises(ValidationError) as info:
        InstallConfig.model_validate({"token": TOKEN, **fields})
    assert problem in str(info.value)
