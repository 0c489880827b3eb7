#!/usr/bin/env python3
"""Record this machine's NVIDIA GPUs as a fixture for tests and demos.

    .venv/bin/python scripts/record-gpus.py [--readings 5] [--interval 2] [-o FILE] [--load]

Runs on a real NVIDIA machine (driver loaded). Reads every GPU through NVML
with the same source the server uses (``llmos.gpu.nvml.NvmlGPUSource``), takes
``--readings`` readings ``--interval`` seconds apart, and writes one JSON
recording (``llmos.gpu-recording/v1``) to ``-o`` or stdout: the GPUs (uuid,
index, name, PCI bus id, total memory, compute capability, MIG mode, ECC mode,
power limit), the driver, CUDA and NVML versions, and per reading each GPU's
utilization, memory used, temperature, power, ECC error counts, XID errors
and row-remapping state. ``llmos server --gpu-fixture FILE`` replays it;
tests/fixtures/gpus/ holds recordings.

``--load`` keeps the GPUs busy while recording (a matrix multiply per GPU
through torch, when torch with CUDA is installed) so the readings show a
loaded GPU as well as an idle one.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "src"))

from llmos.gpu.inventory import Recording, TimedReading
from llmos.gpu.nvml import NvmlGPUSource


def now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@contextlib.contextmanager
def busy_gpus(count: int) -> Iterator[None]:
    """Matrix multiplies on every GPU in the background, if torch can reach them."""
    try:
        import torch
    except ImportError:
        print("--load: torch is not installed; recording idle GPUs only", file=sys.stderr)
        yield
        return
    stop = threading.Event()

    def spin(index: int) -> None:
        with torch.cuda.device(index):
            a = torch.randn(4096, 4096, device="cuda", dtype=torch.float16)
            while not stop.is_set():
                (a @ a).sum().item()

    threads = [threading.Thread(target=spin, args=(i,), daemon=True) for i in range(count)]
    for thread in threads:
        thread.start()
    try:
        yield
    finally:
        stop.set()
        for thread in threads:
            thread.join(timeout=10)


def record(readings: int, interval: float, load: bool) -> Recording:
    source = NvmlGPUSource()
    try:
        first = source.read()
        if first.error is not None:
            raise SystemExit(f"NVML cannot read the GPUs here: {first.error}")
        if not first.gpus:
            raise SystemExit("NVML lists no GPU on this machine")
        taken = [TimedReading(now(), tuple(g.reading for g in first.gpus))]
        with busy_gpus(len(first.gpus)) if load else contextlib.nullcontext():
            for _ in range(readings - 1):
                time.sleep(interval)
                snapshot = source.read()
                if snapshot.error is not None:
                    raise SystemExit(f"NVML failed while recording: {snapshot.error}")
                taken.append(TimedReading(now(), tuple(g.reading for g in snapshot.gpus)))
        return Recording(
            gpus=tuple(g.info for g in first.gpus),
            readings=tuple(taken),
            driver_version=first.driver_version,
            cuda_version=first.cuda_version,
            nvml_version=first.nvml_version,
            recorded_at=taken[0].at,
            interval_seconds=interval,
            origin="nvml",
        )
    finally:
        source.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--readings", type=int, default=5, help="readings to take (default 5)")
    parser.add_argument("--interval", type=float, default=2.0, help="seconds between readings")
    parser.add_argument("-o", "--output", type=Path, help="file to write (default: stdout)")
    parser.add_argument("--load", action="store_true", help="keep the GPUs busy (needs torch)")
    args = parser.parse_args()
    if args.readings < 1:
        parser.error("--readings must be at least 1")
    text = json.dumps(record(args.readings, args.interval, args.load).to_dict(), indent=2) + "\n"
    if args.output:
        args.output.write_text(text, encoding="utf-8")
        print(f"wrote {args.output}", file=sys.stderr)
    else:
        sys.stdout.write(text)


if __name__ == "__main__":
    main()
