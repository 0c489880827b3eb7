"""``python -m llmos.engines.hf_server``: load a model, then serve it until SIGTERM.

The :class:`~llmos.engines.transformers.TransformersEngine` builds this command
line for each replica; it also works by hand against any local model directory.
The model is loaded before the server listens, so ``/health`` answers only
once it can serve.
"""

from __future__ import annotations

import argparse
import logging
import os
from collections.abc import Sequence
from pathlib import Path

from llmos.engines.hf_server.model import DTYPES

# The key callers must send as ``Authorization: Bearer KEY`` (TransformersEngine.key_env);
# taken out of the environment at once, so nothing the model runs inherits it.
KEY_ENV = "LLMOS_ENGINE_KEY"


def _fraction(text: str) -> float:
    value = float(text)
    if not 0 < value <= 1:
        raise argparse.ArgumentTypeError(f"{text} is not in (0, 1]: give a share such as 0.5")
    return value


def parse(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m llmos.engines.hf_server",
        description="Serve a Hugging Face causal LM with an OpenAI-compatible API.",
    )
    parser.add_argument("--model", required=True, help="a local model directory")
    parser.add_argument("--served-model-name", help="the name clients use (default: the folder)")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument(
        "--dtype",
        choices=DTYPES,
        default="auto",
        help="auto: the checkpoint's dtype on CUDA, float32 on CPU",
    )
    parser.add_argument(
        "--gpu-memory-fraction",
        type=_fraction,
        help="share of each GPU's memory the weights may take (device_map=auto's max_memory)",
    )
    parser.add_argument(
        "--trust-remote-code",
        action="store_true",
        help="run the Python code a model repo ships (only for repos you trust)",
    )
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> None:
    args = parse(argv)
    api_key = os.environ.pop(KEY_ENV, None) or None
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")

    import uvicorn

    from llmos.engines.hf_server.app import create_app
    from llmos.engines.hf_server.model import LoadedModel
    from llmos.engines.quiet_probe import quiet

    loaded = LoadedModel.load(
        args.model,
        dtype=args.dtype,
        gpu_memory_fraction=args.gpu_memory_fraction,
        trust_remote_code=args.trust_remote_code,
    )
    name = args.served_model_name or Path(args.model).name
    quiet("/health")
    uvicorn.run(create_app(loaded, name, api_key), host=args.host, port=args.port, log_level="info")


if __name__ == "__main__":
    main()
