"""The installer's plan without touching the host: k3s config, unit, manifests, dry run."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest
import yaml
from pydantic import ValidationError

from llmos.install.config import K3S_VERSION, InstallConfig
from llmos.install.manifests import manifests
from llmos.install.plan import Run, WriteFile, describe, install_plan, uninstall_plan, write_files

TOKEN = "a-long-shared-cluster-token"


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


def test_the_first_server_writes_k3s_config_unit_and_manifests(tmp_path: Path) -> None:
    written = write_files(install_plan(first_server()), tmp_path)
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
    assert list(yaml.safe_load_all(deployed.read_text())) == manifests()
    assert deployed in written


def test_joining_nodes_name_the_server_and_deploy_nothing(tmp_path: Path) -> None:
    agent = InstallConfig(role="agent", server="https://10.0.0.10:6443", token=TOKEN)
    steps = install_plan(agent)
    paths = {step.path for step in steps if isinstance(step, WriteFile)}
    assert not any("manifests" in path for path in paths)
    write_files(steps, tmp_path)
    config = yaml.safe_load((tmp_path / "etc/rancher/k3s/config.yaml").read_text())
    assert config == {"server": "https://10.0.0.10:6443", "token": TOKEN}
    unit = (tmp_path / "etc/systemd/system/k3s-agent.service").read_text()
    assert "ExecStart=/usr/local/bin/k3s agent" in unit
    assert steps[-1] == Run(
        ("systemctl", "enable", "--now", "k3s-agent"), "start k3s now and at boot"
    )


def test_online_and_air_gap_installs_of_the_pinned_k3s() -> None:
    online = install_plan(first_server())[0]
    assert isinstance(online, Run) and "curl -sfL https://get.k3s.io" in online.argv[-1]
    assert ("INSTALL_K3S_VERSION", K3S_VERSION) in online.env
    offline = install_plan(first_server(), airgap_dir=Path("/srv/k3s"))
    commands = [" ".join(step.argv) for step in offline if isinstance(step, Run)]
    assert not any("curl" in command for command in commands)
    assert "install -m 0755 /srv/k3s/k3s /usr/local/bin/k3s" in commands
    script = next(s for s in offline if isinstance(s, Run) and s.argv[-1].endswith("install.sh"))
    assert ("INSTALL_K3S_SKIP_DOWNLOAD", "true") in script.env


def test_dry_run_shows_every_file_and_command() -> None:
    steps = install_plan(first_server())
    text = describe(steps)
    for step in steps:
        if isinstance(step, WriteFile):
            assert f"write {step.path}" in text
        else:
            assert step.why in text
    assert TOKEN in text  # the dry run is the whole truth, token included: root's to read
    assert "k3s-uninstall.sh" in describe(uninstall_plan(first_server()))


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
    ],
)
def test_configs_that_cannot_work_are_refused(fields: dict[str, object], problem: str) -> None:
    with pytest.raises(ValidationError) as info:
        InstallConfig.model_validate({"token": TOKEN, **fields})
    assert problem in str(info.value)
