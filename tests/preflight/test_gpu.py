"""GPU check: PCI discovery, a GPU without a driver, and recorded NVML readings."""

from __future__ import annotations

import shutil

import pytest

from llmos.preflight import Mode, NvmlSnapshot, RecordedNvmlReader, Status, run_preflight
from llmos.preflight.nvml import NvmlDevice

from .hosttree import HostTree, nvml_reader

NVIDIA = 0x10DE
H100_PCIE = 0x2331
VGA = 0x030000
THREE_D = 0x030200
AUDIO = 0x040300


def test_no_nvidia_device_passes_as_cpu_only(tree: HostTree) -> None:
    tree.pci_device("0000:00:02.0", 0x8086, 0x1234, VGA, "i915")
    result = run_preflight(tree.options(), only=["gpu"]).result("gpu")
    assert result.status is Status.PASS
    assert result.measured is not None and "CPU-only" in result.measured


def test_nvidia_audio_function_is_not_a_gpu(tree: HostTree) -> None:
    tree.pci_device("0000:01:00.1", NVIDIA, 0x10F0, AUDIO, "snd_hda_intel")
    assert run_preflight(tree.options(), only=["gpu"]).result("gpu").status is Status.PASS


def test_gpu_on_pci_without_driver_fails(tree: HostTree) -> None:
    tree.pci_device("0000:01:00.0", NVIDIA, H100_PCIE, THREE_D, driver=None)
    options = tree.options(nvml=nvml_reader("library-not-found"))
    result = run_preflight(options, only=["gpu"]).result("gpu")
    assert result.status is Status.FAIL
    assert result.measured is not None
    assert "0000:01:00.0 [10de:2331] (no driver)" in result.measured
    assert "driver not loaded" in result.measured
    assert result.fix is not None and "NVIDIA driver" in result.fix
    assert result.data["pciDevices"] == [
        {"address": "0000:01:00.0", "deviceId": "0x2331", "driver": None}
    ]


def test_gpu_bound_to_nouveau_fails(tree: HostTree) -> None:
    tree.pci_device("0000:01:00.0", NVIDIA, 0x1B80, VGA, driver="nouveau")
    result = run_preflight(tree.options(), only=["gpu"]).result("gpu")
    assert result.status is Status.FAIL
    assert "(nouveau)" in (result.measured or "")


def test_driver_loaded_but_nvml_fails(tree: HostTree) -> None:
    tree.pci_device("0000:01:00.0", NVIDIA, H100_PCIE, THREE_D, "nvidia")
    tree.nvidia_driver("550.54.15")
    options = tree.options(
        nvml=RecordedNvmlReader(NvmlSnapshot(error="Driver/library version mismatch"))
    )
    result = run_preflight(options, only=["gpu"]).result("gpu")
    assert result.status is Status.FAIL
    assert "version mismatch" in (result.measured or "")


@pytest.mark.parametrize(
    ("fixture", "devices", "expected", "capability"),
    [
        ("tesla-m60-cc52", 1, Status.FAIL, "5.2"),
        ("tesla-p100-cc60", 1, Status.PASS, "6.0"),
        ("h100-cc90", 2, Status.PASS, "9.0"),
        ("h200-cc90", 1, Status.PASS, "9.0"),  # NVML on a real H200 (scripts/gpu-check.sh)
    ],
)
def test_compute_capability_from_recorded_nvml(
    tree: HostTree, fixture: str, devices: int, expected: Status, capability: str
) -> None:
    for index in range(devices):
        tree.pci_device(f"0000:{0x18 + index:02x}:00.0", NVIDIA, H100_PCIE, THREE_D, "nvidia")
    tree.nvidia_driver("550.54.15")
    reader = nvml_reader(fixture)
    result = run_preflight(tree.options(nvml=reader), only=["gpu"]).result("gpu")
    assert result.status is expected, result
    snapshot = reader.read()
    for device in snapshot.devices:
        assert device.name in (result.measured or "")
    assert f"cc {capability}" in (result.measured or "")
    assert f"driver {snapshot.driver_version}" in (result.measured or "")
    assert result.data["nvml"]["devices"][0]["computeCapability"] == capability
    assert result.data["procDriverVersion"] == "550.54.15"
    if expected is Status.FAIL:
        assert "compute capability 5.2" in (result.fix or "")


def test_fewer_gpus_in_nvml_than_on_pci_warns(tree: HostTree) -> None:
    for index in range(3):
        tree.pci_device(f"0000:{0x18 + index:02x}:00.0", NVIDIA, H100_PCIE, THREE_D, "nvidia")
    tree.nvidia_driver("550.54.15")
    result = run_preflight(tree.options(nvml=nvml_reader("h100-cc90")), only=["gpu"]).result("gpu")
    assert result.status is Status.WARN
    assert "2 of 3" in (result.fix or "")


def test_embedded_mode_downgrades_gpu_failures(tree: HostTree) -> None:
    tree.pci_device("0000:01:00.0", NVIDIA, H100_PCIE, THREE_D, driver=None)
    report = run_preflight(tree.options(mode=Mode.EMBEDDED), only=["gpu"])
    assert report.result("gpu").status is Status.WARN
    assert report.ok


def test_snapshot_round_trips_through_json() -> None:
    device = NvmlDevice(0, "NVIDIA H200", 150_000_000_000, (9, 0), "00000000:01:00.0", "GPU-x")
    snapshot = NvmlSnapshot("560.35.03", (device,))
    assert NvmlSnapshot.from_dict(snapshot.to_dict()) == snapshot


def test_missing_sysfs_is_not_reported_as_a_cpu_only_node(tree: HostTree) -> None:
    """No /sys at all says nothing about GPUs: warn instead of passing as CPU-only."""
    shutil.rmtree(tree.root / "sys")
    result = run_preflight(tree.options(), only=["gpu"]).result("gpu")
    assert result.status is Status.WARN
    assert "CPU-only" not in (result.measured or "")
    assert f"{tree.root}/sys/bus is missing" in (result.measured or "")
    assert result.fix is not None and "/sys" in result.fix


def test_a_host_without_a_pci_bus_passes_as_cpu_only(tree: HostTree) -> None:
    shutil.rmtree(tree.root / "sys/bus/pci")
    result = run_preflight(tree.options(), only=["gpu"]).result("gpu")
    assert result.status is Status.PASS
    assert "CPU-only" in (result.measured or "")
