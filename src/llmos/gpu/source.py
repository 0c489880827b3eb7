"""Where GPU snapshots come from: the :class:`GPUSource` plug point and its recorded stand-in.

The server's node agent calls ``read()`` at every heartbeat (in a thread:
NVML calls block). :class:`~llmos.gpu.nvml.NvmlGPUSource` asks the driver;
:class:`FixtureGPUSource` replays a :class:`~llmos.gpu.inventory.Recording`
(``llmos server --gpu-fixture PATH``), one reading per call, round and
round, so tests and demos run on machines without the GPUs they describe.
"""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Protocol

from llmos.gpu.errors import GPUError
from llmos.gpu.health import HealthTracker
from llmos.gpu.inventory import GPU, GPUReading, GPUSnapshot, Recording

__all__ = ["FixtureGPUSource", "GPUSource", "load_recording"]


class GPUSource(Protocol):
    """A machine's GPUs, read on demand."""

    def read(self) -> GPUSnapshot:
        """Every GPU with a fresh reading; report failure in ``error``, never raise."""
        ...

    def close(self) -> None:
        """Release what reading holds (NVML's handle); ``read`` may start it again."""
        ...


def load_recording(path: Path) -> Recording:
    """Read a recording file; raise GPUError naming the file and the problem."""
    try:
        return Recording.from_dict(json.loads(path.read_text(encoding="utf-8")))
    except OSError as exc:
        raise GPUError(f"GPU fixture {path}: cannot read it: {exc.strerror or exc}") from exc
    except (ValueError, KeyError, TypeError) as exc:
        raise GPUError(f"GPU fixture {path}: {exc}") from exc


class FixtureGPUSource:
    """Replays a recording: its devices, with the next reading at every ``read()``."""

    def __init__(self, recording: Recording) -> None:
        self.recording = recording
        self._next = 0
        self._health = HealthTracker()
        self._lock = threading.Lock()

    @classmethod
    def from_file(cls, path: Path) -> FixtureGPUSource:
        return cls(load_recording(path))

    def read(self) -> GPUSnapshot:
        recording = self.recording
        with self._lock:
            readings = recording.readings
            current = readings[self._next % len(readings)].gpus if readings else ()
            self._next += 1
            by_uuid = {r.uuid: r for r in current}
            gpus = []
            for info in recording.gpus:
                reading = by_uuid.get(info.uuid) or GPUReading(uuid=info.uuid)
                gpus.append(GPU(info, reading, self._health.observe(reading)))
        return GPUSnapshot(
            driver_version=recording.driver_version,
            cuda_version=recording.cuda_version,
            nvml_version=recording.nvml_version,
            gpus=tuple(gpus),
        )

    def close(self) -> None:
        pass
