"""Benchmark `llmos preflight`: the full run with disk measurement, and ``--quick``.

Targets: full run <= 15 s, ``--quick`` <= 2 s, both measured end to end as
a user runs them (a fresh `python -m llmos.cli.preflight` process, so
interpreter start-up and imports count).

    uv run python bench/preflight.py [--runs-full 3] [--runs-quick 10] [--data-dir DIR]

Prints a Markdown table; docs/benchmarks.md holds the latest one.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

TARGETS = {"full": 15.0, "full, built-in": 15.0, "quick": 2.0}


def run_once(data_dir: Path, quick: bool, fio: bool = True) -> tuple[float, dict[str, object]]:
    command = [
        sys.executable,
        "-m",
        "llmos.cli.preflight",
        "--output",
        "json",
        "--data-dir",
        str(data_dir),
    ]
    if quick:
        command.append("--quick")
    started = time.perf_counter()
    # Without fio on PATH the disk checks use the built-in measurement.
    env = None if fio else {**os.environ, "PATH": "/nonexistent"}
    done = subprocess.run(command, capture_output=True, text=True, check=False, env=env)
    elapsed = time.perf_counter() - started
    if done.returncode not in (0, 1):
        raise SystemExit(f"preflight failed to run ({done.returncode}): {done.stderr}")
    report: dict[str, object] = json.loads(done.stdout)
    return elapsed, report


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs-full", type=int, default=3)
    parser.add_argument("--runs-quick", type=int, default=10)
    parser.add_argument(
        "--data-dir",
        type=Path,
        default=None,
        help="where the disk is measured [default: a new directory under /var/tmp]",
    )
    args = parser.parse_args()
    base = Path("/var/tmp") if Path("/var/tmp").is_dir() else None
    data_dir = args.data_dir or Path(tempfile.mkdtemp(prefix="llmos-bench-", dir=base))
    rows = []
    disk: dict[str, object] = {}  # last reading of each disk check, per kind of run
    try:
        for name, quick, fio, runs in (
            ("full", False, True, args.runs_full),
            ("full, built-in", False, False, args.runs_full),
            ("quick", True, True, args.runs_quick),
        ):
            times = []
            for _ in range(runs):
                elapsed, report = run_once(data_dir, quick, fio)
                times.append(elapsed)
                if not quick:
                    results = report["results"]
                    assert isinstance(results, list)
                    for r in results:
                        if r["id"].startswith("disk-"):
                            disk[f"{r['id']} ({name})"] = r["measured"]
            worst = max(times)
            rows.append(
                f"| {name} | {runs} | {statistics.median(times):.2f} s | {worst:.2f} s "
                f"| <= {TARGETS[name]:g} s | {'met' if worst <= TARGETS[name] else 'MISSED'} |"
            )
    finally:
        if args.data_dir is None:
            shutil.rmtree(data_dir, ignore_errors=True)
    print(
        f"Machine: {platform.machine()}, {platform.platform()}, Python {platform.python_version()}"
    )
    print("\n| run | runs | median | worst | target | |\n|---|---|---|---|---|---|")
    print("\n".join(rows))
    print("\nDisk readings of the last run of each kind:")
    for check_id, measured in disk.items():
        print(f"- {check_id}: {measured}")
    return 0 if all(row.endswith("met |") for row in rows) else 1


if __name__ == "__main__":
    raise SystemExit(main())
