"""No-existing-Kubernetes check and firewalld check on fixture trees."""

from __future__ import annotations

import pytest

from llmos.preflight import CheckResult, Role, Status, run_preflight

from .hosttree import HostTree


def _kubernetes(tree: HostTree) -> CheckResult:
    return run_preflight(tree.options(), only=["kubernetes"]).result("kubernetes")


def test_clean_node_passes(tree: HostTree) -> None:
    tree.process(1, "systemd", "/sbin/init")
    assert _kubernetes(tree).status is Status.PASS


@pytest.mark.parametrize(
    ("comm", "argv"),
    [
        ("k3s-server", ("/usr/local/bin/k3s", "server")),
        ("k3s-agent", ("/usr/local/bin/k3s", "agent")),
        ("rke2", ("/usr/local/bin/rke2", "server")),
        ("kubelet", ("/usr/bin/kubelet", "--config=/var/lib/kubelet/config.yaml")),
        ("kube-apiserver", ("kube-apiserver", "--etcd-servers=https://127.0.0.1:2379")),
    ],
)
def test_kubernetes_processes_fail_and_are_named(
    tree: HostTree, comm: str, argv: tuple[str, ...]
) -> None:
    tree.process(4242, comm, *argv)
    result = _kubernetes(tree)
    assert result.status is Status.FAIL
    assert f"process {comm} (pid 4242)" in (result.measured or "")


@pytest.mark.parametrize(
    "path",
    [
        "/etc/kubernetes",
        "/var/lib/kubelet",
        "/var/lib/rancher/k3s",
        "/var/lib/rancher/rke2",
        "/run/k3s/containerd/containerd.sock",
    ],
)
def test_kubernetes_paths_fail_and_are_named(tree: HostTree, path: str) -> None:
    tree.mkdir(path)
    result = _kubernetes(tree)
    assert result.status is Status.FAIL
    assert f"path {path}" in (result.measured or "")


@pytest.mark.parametrize("port", [6443, 10250])
def test_listeners_on_kubernetes_ports_fail_with_owner(tree: HostTree, port: int) -> None:
    tree.tcp_listener(port, inode=777001)
    tree.process(900, "mystery", "/opt/mystery", fds={3: "socket:[777001]", 4: "/dev/null"})
    result = _kubernetes(tree)
    assert result.status is Status.FAIL
    assert f"listener on {port}/tcp (mystery (pid 900))" in (result.measured or "")
    # Only a listener: the fix is to stop it, not to uninstall a Kubernetes that is not there.
    assert result.fix == (
        "Stop what listens on 6443/10250 (LLMOS's Kubernetes needs these ports), "
        "or use another node."
    )


@pytest.mark.parametrize(
    "argv",
    [
        ("less", "/var/log/k3s"),
        ("man", "kubelet"),
        ("vim", "/usr/local/bin/rke2"),
    ],
)
def test_a_command_naming_kubernetes_in_its_arguments_is_not_kubernetes(
    tree: HostTree, argv: tuple[str, ...]
) -> None:
    tree.process(555, argv[0], *argv)
    result = _kubernetes(tree)
    assert result.status is Status.PASS, result.measured


def test_kubernetes_run_by_an_interpreter_is_found(tree: HostTree) -> None:
    tree.process(556, "sh", "/bin/sh", "-e", "/usr/local/bin/kubelet", "--v=2")
    result = _kubernetes(tree)
    assert result.status is Status.FAIL
    assert "process sh (pid 556)" in (result.measured or "")


def test_plain_containerd_socket_only_warns(tree: HostTree) -> None:
    tree.write("/run/containerd/containerd.sock", "")
    assert _kubernetes(tree).status is Status.WARN


def test_existing_llmos_installation_is_reported_as_such(tree: HostTree) -> None:
    tree.mkdir("/etc/llmos")
    tree.mkdir("/var/lib/rancher/k3s")
    result = _kubernetes(tree)
    assert result.status is Status.FAIL
    assert result.reason == "existing LLMOS installation"
    assert "LLMOS installation is already on this node (/etc/llmos)" in (result.measured or "")
    assert "`llmos uninstall`" in (result.fix or "")


def test_leftover_llmos_files_without_kubernetes_warn(tree: HostTree) -> None:
    tree.mkdir("/var/lib/llmos")
    result = _kubernetes(tree)
    assert result.status is Status.WARN
    assert result.reason == "existing LLMOS installation"
    assert "remove /var/lib/llmos" in (result.fix or "")


def test_firewalld_not_running_passes(tree: HostTree) -> None:
    result = run_preflight(tree.options(role=Role.WORKER), only=["firewalld"]).result("firewalld")
    assert result.status is Status.PASS
    # The documented data fields are there on a pass too: no lines to run, the role's ports.
    assert result.data == {
        "commands": [],
        "ports": ["5001/tcp", "6443/tcp", "8443/tcp", "8472/udp", "10250/tcp", "30000-32767/tcp"],
    }


def test_firewalld_active_prints_server_commands(tree: HostTree) -> None:
    tree.process(700, "firewalld", "/usr/bin/python3", "-s", "/usr/sbin/firewalld", "--nofork")
    result = run_preflight(tree.options(), only=["firewalld"]).result("firewalld")
    assert result.status is Status.WARN
    assert result.data["commands"] == [
        "firewall-cmd --permanent --add-port=2379-2380/tcp",
        "firewall-cmd --permanent --add-port=5001/tcp",
        "firewall-cmd --permanent --add-port=6443/tcp",
        "firewall-cmd --permanent --add-port=8443/tcp",
        "firewall-cmd --permanent --add-port=8472/udp",
        "firewall-cmd --permanent --add-port=10250/tcp",
        "firewall-cmd --permanent --add-port=30000-32767/tcp",
        "firewall-cmd --reload",
    ]


def test_firewalld_commands_for_a_worker_leave_out_etcd(tree: HostTree) -> None:
    tree.process(700, "firewalld", "/usr/sbin/firewalld")
    result = run_preflight(tree.options(role=Role.WORKER), only=["firewalld"]).result("firewalld")
    commands = result.data["commands"]
    assert "firewall-cmd --permanent --add-port=2379-2380/tcp" not in commands
    assert "firewall-cmd --permanent --add-port=8472/udp" in commands
