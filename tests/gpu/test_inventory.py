"""GPU inventory: the fixtures, the recording format, health, and NVML read through a fake pynvml."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path
from types import ModuleType

import pytest

from llmos.gpu.errors import GPUError
from llmos.gpu.health import HealthTracker
from llmos.gpu.inventory import FORMAT, GPUReading, Recording
from llmos.gpu.nvml import NvmlGPUSource
from llmos.gpu.source import FixtureGPUSource, load_recording

from .fakenvml import FakeNvml
from .helpers import FIXTURES, H100X8, H200, MIXED, RTX4090

MiB = 2**20
ROOT = Path(__file__).parent.parent.parent

EXPECTED = [
    # (fixture, GPU count, names, MiB each, compute capabilities, MIG modes, ECC)
    (H100X8, 8, {"NVIDIA H100 80GB HBM3"}, {81559}, {(9, 0)}, {"Disabled"}, {True}),
    (RTX4090, 1, {"NVIDIA GeForce RTX 4090"}, {24564}, {(8, 9)}, {"NotSupported"}, {False}),
    (
        MIXED,
        3,
        {"NVIDIA A100-SXM4-40GB", "NVIDIA L4"},
        {40960, 23034},
        {(8, 0), (8, 9)},
        {"Disabled", "NotSupported"},
        {True},
    ),
]


@pytest.mark.parametrize(
    ("path", "count", "names", "mib", "caps", "mig", "ecc"),
    EXPECTED,
    ids=[e[0].stem for e in EXPECTED],
)
def test_inventory_from_each_fixture(
    path: Path,
    count: int,
    names: set[str],
    mib: set[int],
    caps: set[tuple[int, int]],
    mig: set[str],
    ecc: set[bool],
) -> None:
    source = FixtureGPUSource.from_file(path)
    snapshot = source.read()
    assert snapshot.error is None
    assert (snapshot.driver_version, snapshot.cuda_version) == ("550.54.15", "12.4")
    assert [g.info.index for g in snapshot.gpus] == list(range(count))
    assert len({g.info.uuid for g in snapshot.gpus}) == count
    assert {g.info.name for g in snapshot.gpus} == names
    assert {g.info.memory_total_bytes // MiB for g in snapshot.gpus} == mib
    assert {g.info.compute_capability for g in snapshot.gpus} == caps
    assert {g.info.mig_mode for g in snapshot.gpus} == mig
    assert {g.info.ecc_enabled for g in snapshot.gpus} == ecc
    assert all(g.health.healthy for g in snapshot.gpus)
    for gpu in snapshot.gpus:
        reading = gpu.reading
        assert reading.utilization_percent is not None and reading.temperature_celsius is not None
        assert reading.memory_used_bytes is not None and reading.power_watts is not None
        assert reading.power_watts <= (gpu.info.power_limit_watts or 0)
        assert (reading.ecc_errors is not None) == bool(gpu.info.ecc_enabled)
    # Readings go round: idle, loaded, idle again, then the first one anew.
    utilization = [
        max(g.reading.utilization_percent or 0 for g in source.read().gpus) for _ in range(2)
    ]
    assert utilization[0] > 50 and utilization[1] < 50
    assert source.read().gpus[0].reading == snapshot.gpus[0].reading


def test_fixtures_say_where_they_come_from() -> None:
    readme = (FIXTURES / "README.md").read_text()
    for path in FIXTURES.glob("*.json"):
        recording = load_recording(path)
        assert path.name in readme, path
        if path == H200:
            assert recording.origin == "nvml", path
            assert "Recorded by scripts/record-gpus.py" in recording.note
        else:
            assert recording.origin == "hand-assembled", path
            assert "replace with recorder output from a real GPU" in recording.note


def test_the_recorded_h200_reads_as_nvml_read_it() -> None:
    """The recorder's output from a real H200: idle first, then busy, with its own process."""
    source = FixtureGPUSource.from_file(H200)
    readings = [source.read() for _ in range(4)]
    first = readings[0]
    assert (first.driver_version, first.cuda_version) == ("580.159.04", "13.0")
    (gpu,) = first.gpus
    assert (gpu.info.name, gpu.info.memory_total_bytes // MiB) == ("NVIDIA H200", 143771)
    assert (gpu.info.compute_capability, gpu.info.mig_mode) == ((9, 0), "Disabled")
    assert gpu.info.ecc_enabled is True and gpu.info.power_limit_watts == 700.0
    assert gpu.health.healthy
    assert gpu.reading.utilization_percent == 0 and not gpu.reading.processes
    for busy in readings[1:]:
        reading = busy.gpus[0].reading
        assert (reading.utilization_percent or 0) >= 80
        assert 400 < (reading.power_watts or 0) <= 700
        assert (reading.memory_used_bytes or 0) > (gpu.reading.memory_used_bytes or 0)
        assert [p.used_memory_bytes for p in reading.processes] == [811597824]


@pytest.mark.parametrize("path", sorted(FIXTURES.glob("*.json")), ids=lambda p: p.stem)
def test_recording_round_trips(path: Path) -> None:
    raw = json.loads(path.read_text())
    assert raw["format"] == FORMAT
    assert Recording.from_dict(raw).to_dict() == raw


def test_bad_recordings_are_refused_with_the_file_named(tmp_path: Path) -> None:
    with pytest.raises(GPUError, match="cannot read it"):
        load_recording(tmp_path / "missing.json")
    wrong = tmp_path / "wrong.json"
    wrong.write_text(json.dumps({"format": "something-else"}))
    with pytest.raises(GPUError, match=r"wrong\.json: not a GPU recording.*record-gpus"):
        load_recording(wrong)
    raw = json.loads(RTX4090.read_text())
    raw["readings"][0]["gpus"][0]["uuid"] = "GPU-nobody"
    stranger = tmp_path / "stranger.json"
    stranger.write_text(json.dumps(raw))
    with pytest.raises(GPUError, match="GPU-nobody"):
        load_recording(stranger)


def test_health_from_xids_errors_and_row_remapping() -> None:
    tracker = HealthTracker()
    assert tracker.observe(GPUReading("a", xid_errors=(13, 31))).healthy  # application faults
    health = tracker.observe(GPUReading("a", xid_errors=(79,)))
    assert health.status == "Unhealthy"
    assert health.reasons == ("XID 79 (GPU has fallen off the bus)",)
    assert tracker.observe(GPUReading("a")).reasons == health.reasons  # sticky
    assert tracker.observe(GPUReading("b")).healthy  # per GPU
    lost = tracker.observe(GPUReading("c", error="GPU is lost"))
    assert lost.reasons == ("NVML cannot read the GPU: GPU is lost",)
    failed = tracker.observe(GPUReading("d", remapped_rows_pending=True, remapped_rows_failed=True))
    assert failed.reasons == ("row remapping failed: the GPU needs service",)
    assert tracker.observe(GPUReading("e", remapped_rows_pending=True)).healthy


def test_fixture_xids_make_a_gpu_unhealthy(tmp_path: Path) -> None:
    raw = json.loads(MIXED.read_text())
    raw["readings"][1]["gpus"][1]["xidErrors"] = [48]
    path = tmp_path / "xid.json"
    path.write_text(json.dumps(raw))
    source = FixtureGPUSource.from_file(path)
    assert all(g.health.healthy for g in source.read().gpus)
    for _ in range(3):
        health = [g.health for g in source.read().gpus]
        assert [h.healthy for h in health] == [True, False, True]
        assert health[1].reasons == ("XID 48 (double-bit ECC error)",)


@pytest.fixture
def fake_nvml(monkeypatch: pytest.MonkeyPatch) -> FakeNvml:
    fake = FakeNvml(load_recording(MIXED))
    monkeypatch.setitem(sys.modules, "pynvml", fake.module())
    return fake


def test_nvml_source_reads_what_nvml_answers(fake_nvml: FakeNvml) -> None:
    recording = fake_nvml.recording
    source = NvmlGPUSource()
    snapshot = source.read()
    assert snapshot.error is None
    assert (snapshot.driver_version, snapshot.cuda_version, snapshot.nvml_version) == (
        recording.driver_version,
        recording.cuda_version,
        recording.nvml_version,
    )
    assert tuple(g.info for g in snapshot.gpus) == recording.gpus
    assert tuple(g.reading for g in snapshot.gpus) == recording.readings[0].gpus
    fake_nvml.advance()
    assert tuple(g.reading for g in source.read().gpus) == recording.readings[1].gpus
    source.close()
    assert fake_nvml.inits == 0


def test_nvml_source_sees_xid_events_and_lost_gpus(fake_nvml: FakeNvml) -> None:
    source = NvmlGPUSource()
    assert all(g.health.healthy for g in source.read().gpus)
    fake_nvml.pending_xids += [(2, 13), (2, 94)]
    gpus = source.read().gpus
    assert gpus[2].reading.xid_errors == (13, 94)
    assert gpus[2].health.reasons == ("XID 94 (contained ECC error)",)
    assert not source.read().gpus[2].health.healthy  # stays so
    fake_nvml.lost.add(0)
    lost = source.read().gpus[0]
    assert lost.info.name == "NVIDIA A100-SXM4-40GB"  # remembered
    assert lost.reading.error == "GPU is lost"
    assert not lost.health.healthy
    source.close()


def test_nvml_source_without_nvml_reports_why(monkeypatch: pytest.MonkeyPatch) -> None:
    fake = FakeNvml(load_recording(RTX4090)).module()

    def no_library() -> None:
        raise fake.NVMLError("NVML Shared Library Not Found")

    fake.nvmlInit = no_library  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "pynvml", fake)
    snapshot = NvmlGPUSource().read()
    assert snapshot.gpus == ()
    assert snapshot.error == "NVML Shared Library Not Found"


def _recorder() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "record_gpus", ROOT / "scripts" / "record-gpus.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_recorder_writes_the_fixture_format(
    fake_nvml: FakeNvml, monkeypatch: pytest.MonkeyPatch
) -> None:
    """What the recorder writes from NVML loads back as the same GPUs and readings."""
    recorder = _recorder()
    calls = iter(range(10))

    def sleep(seconds: float) -> None:
        next(calls)
        fake_nvml.advance()

    monkeypatch.setattr(recorder.time, "sleep", sleep)  # the time module's: undone after
    recording = recorder.record(readings=3, interval=0.5, load=False)
    raw = recording.to_dict()
    assert raw["origin"] == "nvml" and raw["intervalSeconds"] == 0.5
    again = Recording.from_dict(json.loads(json.dumps(raw)))
    assert again.gpus == fake_nvml.recording.gpus
    assert [r.gpus for r in again.readings] == [r.gpus for r in fake_nvml.recording.readings]
