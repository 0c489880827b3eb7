"""What ``resources.cpu`` buys under contention: two local replicas that each want every core.

Starts two replicas through the local runtime (their own cgroups), each running as many
busy processes as the machine has cores, one with ``cpu`` = 1.5 and one with 0.5 (a 3:1
share), for ``--seconds``; then reads the CPU time each replica's processes got and
prints the ratio. With shares, contention splits the machine about 3:1; an idle core
would be anyone's. Needs cgroups the runtime may write (root, here).

    .venv/bin/python bench/cpu_shares.py [--seconds 10]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
import time
from pathlib import Path

import psutil

from llmos.runtime.base import Limits, ReplicaSpec
from llmos.runtime.local import LocalRuntime

BUSY = """
import multiprocessing, os
def spin():
    while True:
        pass
procs = [multiprocessing.Process(target=spin) for _ in range(os.cpu_count() or 1)]
for p in procs:
    p.start()
for p in procs:
    p.join()
"""


def cpu_seconds(pid: int) -> float:
    root = psutil.Process(pid)
    total = 0.0
    for process in [root, *root.children(recursive=True)]:
        try:
            times = process.cpu_times()
        except psutil.NoSuchProcess:
            continue
        total += times.user + times.system
    return total


async def measure(seconds: float) -> dict[str, float]:
    with tempfile.TemporaryDirectory(prefix="llmos-cpu-bench-") as scratch:
        runtime = LocalRuntime(Path(scratch) / "state", Path(scratch) / "logs")
        await runtime.start()
        if runtime.limits_problem:
            sys.exit(f"no cgroups here: {runtime.limits_problem}")
        try:
            pids = {}
            for name, cpus in (("big", 1.5), ("small", 0.5)):
                spec = ReplicaSpec(
                    key=f"bench/default/{name}/0",
                    command=(sys.executable, "-c", BUSY),
                    wants_port=False,
                    health=None,
                    limits=Limits(cpus=cpus),
                )
                status = await runtime.ensure(spec)
                assert status.pid is not None
                pids[name] = status.pid
            await asyncio.sleep(1.0)  # all spinning
            before = {name: cpu_seconds(pid) for name, pid in pids.items()}
            started = time.monotonic()
            await asyncio.sleep(seconds)
            elapsed = time.monotonic() - started
            after = {name: cpu_seconds(pid) for name, pid in pids.items()}
        finally:
            await runtime.stop()
    got = {name: after[name] - before[name] for name in pids}
    return {**got, "elapsed": elapsed, "ratio": got["big"] / max(got["small"], 1e-9)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=10.0)
    args = parser.parse_args()
    result = asyncio.run(measure(args.seconds))
    cores = os.cpu_count() or 1
    print(
        f"{cores} cores, {result['elapsed']:.1f} s: cpu 1.5 got {result['big']:.2f} CPU s, "
        f"cpu 0.5 got {result['small']:.2f} CPU s, ratio {result['ratio']:.2f} (shares 3.0)"
    )


if __name__ == "__main__":
    main()
