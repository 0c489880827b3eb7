"""Ray node slots (loopback IPs and port ranges), commands and the Ray version check."""

from __future__ import annotations

import importlib.util
import socket
from pathlib import Path

import pytest

from llmos.controllers import raynodes
from llmos.controllers.errors import TemporaryError
from llmos.controllers.raynodes import RayUnavailable, Slot, Slots


def test_slots_never_overlap_and_stay_below_the_ephemeral_range() -> None:
    slots = [Slot(i) for i in range(raynodes.SLOTS)]
    ports = [port for slot in slots for port in slot.ports()]
    assert len(ports) == len(set(ports))
    assert max(ports) < 32768  # Linux's default ephemeral ports start there
    assert len({slot.ip for slot in slots}) == raynodes.SLOTS
    assert "127.0.0.1" not in {slot.ip for slot in slots}
    low, high = slots[0].worker_ports
    assert slots[0].gcs_port < low <= high < slots[1].first_port


@pytest.fixture
def all_free(monkeypatch: pytest.MonkeyPatch) -> None:
    """Allocation without looking at the machine (a test's Ray cluster may hold slot 0)."""
    monkeypatch.setattr(raynodes, "slot_is_free", lambda slot: True)


@pytest.mark.usefixtures("all_free")
def test_a_key_keeps_its_slot_and_a_released_slot_is_reused() -> None:
    slots = Slots()
    head = slots.allocate("mlclusters/a/r/head")
    worker = slots.allocate("mlclusters/a/r/cpu-0")
    assert head != worker
    assert slots.allocate("mlclusters/a/r/head") == head
    slots.release("mlclusters/a/r/cpu-0")
    assert slots.allocate("mlclusters/b/r/head") == worker


@pytest.mark.usefixtures("all_free")
def test_no_free_slot_is_a_temporary_error_that_says_what_to_do() -> None:
    slots = Slots(count=1)
    slots.allocate("one")
    with pytest.raises(TemporaryError, match="scale a cluster down or delete one"):
        slots.allocate("two")


def test_a_slot_whose_ports_are_taken_is_not_free() -> None:
    last = Slot(raynodes.SLOTS - 1)
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", last.first_port + 50))
        sock.listen()
        assert not raynodes.slot_is_free(last)
    assert raynodes.slot_is_free(last)


def _port_flags(command: list[str]) -> dict[str, int]:
    flags = (arg.split("=", 1) for arg in command if arg.startswith("--") and "=" in arg)
    return {flag: int(value) for flag, value in flags if flag.endswith("-port")}


def test_commands_use_the_slot_and_only_its_ports(tmp_path: Path) -> None:
    head, worker = Slot(0), Slot(1)
    command = raynodes.head_command(head, tmp_path, {"cpu": "1500m", "memory": "1Gi", "gpu": 1})
    assert "--head" in command and "--block" in command
    assert "--node-ip-address=127.0.0.2" in command
    assert "--dashboard-host=127.0.0.1" in command
    assert f"--dashboard-port={head.dashboard_port}" in command
    assert f"--dashboard-agent-listen-port={head.agent_port}" in command
    assert command[command.index("--num-cpus") :][:2] == ["--num-cpus", "2"]
    assert str(1024**3) in command and command[-2:] == ["--num-gpus", "1"]
    assert "llmos.runtime.local.fateshare" in command
    joined = raynodes.worker_command(worker, head, tmp_path, {})
    assert f"--address=127.0.0.2:{head.gcs_port}" in joined
    assert "--node-ip-address=127.0.0.3" in joined
    assert f"--dashboard-agent-listen-port={worker.agent_port}" in joined
    assert f"--min-worker-port={worker.worker_ports[0]}" in joined
    # Every port Ray would otherwise pick at random comes from the node's own slot,
    # below its worker range, and no two are the same.
    for slot, argv in ((head, command), (worker, joined)):
        ports = _port_flags(argv)
        expected = {"--node-manager-port", "--object-manager-port", "--metrics-export-port"}
        assert expected | {"--dashboard-agent-grpc-port", "--runtime-env-agent-port"} <= set(ports)
        fixed = [port for flag, port in ports.items() if "worker-port" not in flag]
        assert len(set(fixed)) == len(fixed)
        assert all(slot.first_port <= port < slot.worker_ports[0] for port in fixed)


def test_node_env_enables_ray_token_auth_and_hides_gpus_unless_asked() -> None:
    env = raynodes.node_env("secret", 0)
    assert env["RAY_AUTH_MODE"] == "token" and env["RAY_AUTH_TOKEN"] == "secret"
    assert env["CUDA_VISIBLE_DEVICES"] == ""
    assert "CUDA_VISIBLE_DEVICES" not in raynodes.node_env("secret", 1)


def test_ray_version_checks(monkeypatch: pytest.MonkeyPatch) -> None:
    installed = raynodes.installed_ray_version()
    if installed is not None:
        assert raynodes.check_ray(None) == installed
        assert raynodes.check_ray(installed) == installed
        with pytest.raises(RayUnavailable) as mismatch:
            raynodes.check_ray("0.0.1")
        assert mismatch.value.reason_code == "VersionMismatch"
        assert "0.0.1" in str(mismatch.value) and installed in str(mismatch.value)
    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == "ray" else real(name, *a)
    )
    with pytest.raises(RayUnavailable, match="install the ray extra") as missing:
        raynodes.check_ray(None)
    assert missing.value.reason_code == "NotAvailable"
