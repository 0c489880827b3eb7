"""The model-fetching init container of a ModelService's pods (cluster mode).

``python -m llmos.engines.fetch --model M --registry R --cache /models --link L``
makes the model available on the node: the bundled model is copied out of the
LLMOS image, a Hugging Face repo is downloaded (resuming) into the node's shared
cache (``hub/``) through ``HF_ENDPOINT`` with ``HF_TOKEN``, a ModelScope model
(``--registry modelscope``) into ``modelscope/`` of it from ``MODELSCOPE_ENDPOINT``
with ``MODELSCOPE_API_TOKEN``, and a local path is used as it is.
Then ``L`` is (re)pointed at the files, so the serving container always finds
them at the same path. It prints progress and exits non-zero, saying why, when
the model cannot be had: the pod then shows the error and Kubernetes retries.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
from pathlib import Path

from llmos.engines.base import EngineError
from llmos.engines.sources import download, parse, resolve_now


def _progress(done: int, total: int) -> None:
    if total:
        print(f"downloaded {done / 2**20:.0f} of {total / 2**20:.0f} MiB", flush=True)


def fetch(model: str, registry: str, cache: Path, link: Path) -> Path:
    ref = parse(model, registry)
    files = resolve_now(ref)
    if files is not None and ref.source == "bundled":
        # Out of the image into the node's cache, where the engine's container sees it.
        target = cache / "bundled" / files.path.name
        if not target.exists() or target.stat().st_size != files.size_bytes:
            target.parent.mkdir(parents=True, exist_ok=True)
            # Per process: two replicas on one node may fetch at once.
            partial = target.with_name(f"{target.name}.{os.getpid()}.partial")
            shutil.copyfile(files.path, partial)
            partial.rename(target)
        path = target
    elif files is not None:
        path = files.path
    elif ref.source == "modelscope":
        files = download(
            ref,
            cache,  # into cache/modelscope
            endpoint=os.environ.get("MODELSCOPE_ENDPOINT") or None,
            token=os.environ.get("MODELSCOPE_API_TOKEN") or None,
            progress=_progress,
        )
        path = files.path
    else:
        files = download(
            ref,
            cache / "hub",
            endpoint=os.environ.get("HF_ENDPOINT") or None,
            token=os.environ.get("HF_TOKEN") or None,
            progress=_progress,
        )
        path = files.path
    link.parent.mkdir(parents=True, exist_ok=True)
    fresh = link.with_name(f"{link.name}.{os.getpid()}.new")
    fresh.unlink(missing_ok=True)
    fresh.symlink_to(path)
    fresh.replace(link)  # atomic: the engine never sees a half-made link
    return path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="llmos-fetch", description=__doc__)
    parser.add_argument("--model", required=True)
    parser.add_argument("--registry", default="huggingface")
    parser.add_argument("--cache", type=Path, required=True)
    parser.add_argument("--link", type=Path, required=True)
    args = parser.parse_args(argv)
    try:
        path = fetch(args.model, args.registry, args.cache, args.link)
    except EngineError as exc:
        print(f"cannot fetch {args.model}: {exc}", file=sys.stderr)
        return 1
    except OSError as exc:
        print(f"cannot fetch {args.model} into {args.cache}: {exc}", file=sys.stderr)
        return 1
    print(f"{args.model} is at {path}, linked from {args.link}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
