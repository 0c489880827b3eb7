"""What giving a volume to ``nobody`` costs each sandboxed start on a root server.

Before a workload runs as ``nobody``, ``sandbox_enter.own`` walks each
writable folder (its volumes, its home) and gives what is not yet ``nobody``'s
to it. This times that walk on a tree of empty files, as a Ray node or
notebook start would meet it:

- ``first``: every file is root's (a volume filled by the server, or the
  first start);
- ``again``: every file is already ``nobody``'s (each later start);
- ``1% new``: again, after root wrote 1% new files.

    sudo .venv/bin/python bench/sandbox_own.py [--files 200000] [--dir DIR]

The tree is made under ``--dir`` (default: the temp dir) and removed after.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

from llmos.runtime.local import sandbox_enter

NOBODY = (65534, 65534)
PER_FOLDER = 1000


def fill(top: Path, files: int, prefix: str = "f") -> None:
    for index in range(files):
        folder = top / f"d{index // PER_FOLDER}"
        if index % PER_FOLDER == 0:
            folder.mkdir(parents=True, exist_ok=True)
        (folder / f"{prefix}{index}").touch()


def timed(top: Path) -> float:
    start = time.perf_counter()
    sandbox_enter.own(str(top), *NOBODY)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--files", type=int, default=200_000)
    parser.add_argument("--dir", type=Path, default=Path(tempfile.gettempdir()))
    args = parser.parse_args()
    if os.geteuid() != 0:
        sys.exit("run as root: only a root server gives volumes to nobody")
    top = Path(tempfile.mkdtemp(prefix="llmos-own-bench-", dir=args.dir))
    try:
        fill(top, args.files)
        rows = [("first", timed(top)), ("again", timed(top))]
        fill(top, args.files // 100, prefix="new")
        rows.append(("1% new", timed(top)))
    finally:
        shutil.rmtree(top)
    print(f"| walk ({args.files:,} files) | seconds | µs per file |")
    print("|---|---|---|")
    for label, seconds in rows:
        print(f"| {label} | {seconds:.2f} | {seconds / args.files * 1e6:.1f} |")


if __name__ == "__main__":
    main()
