"""The flags of ``run.py``, and the checks that make a bad combination fail early."""

from __future__ import annotations

import argparse
import os
from pathlib import Path
from urllib.parse import urlsplit

import litellm_proxy

LOOPBACK_HOSTS = {"127.0.0.1", "::1", "localhost"}


def parse(argv: list[str] | None, description: str | None) -> argparse.Namespace:
    """Parse and check the flags; exits with a usage error naming the flag to fix."""
    p = argparse.ArgumentParser(
        description=description, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    g = p.add_argument_group("LLMOS gateway (already running)")
    g.add_argument("--llmos-url", help="gateway root, e.g. https://127.0.0.1:8443")
    g.add_argument("--llmos-key", help="API key, sent as 'Authorization: Bearer KEY'")
    g.add_argument("--llmos-ca", help="CA bundle that signed the gateway's certificate")
    g.add_argument("--llmos-model", help="model name the gateway routes to the stub")
    g.add_argument("--llmos-pid", type=int, help="gateway PID, for CPU per request and pinning")
    g.add_argument(
        "--no-pin-llmos", action="store_true", help="leave the gateway's CPU affinity alone"
    )
    g.add_argument(
        "--llmos-wait",
        type=float,
        default=30.0,
        help="seconds to wait for a good reply through LLMOS after the stub (re)starts",
    )
    g.add_argument("--skip-llmos", action="store_true", help="measure direct and LiteLLM only")

    g = p.add_argument_group("LiteLLM")
    g.add_argument("--litellm-venv", default=str(litellm_proxy.DEFAULT_VENV))
    g.add_argument("--litellm-port", type=int, default=18081)
    g.add_argument("--skip-litellm", action="store_true")

    g = p.add_argument_group("load and placement")
    g.add_argument("--stub-port", type=int, default=18080)
    g.add_argument(
        "--concurrency", type=_int_list, default=[1, 32, 256], help="comma list (1,32,256)"
    )
    g.add_argument(
        "--replies",
        type=_reply_list,
        default=[False, True],
        help="comma list of json,stream (both)",
    )
    g.add_argument("--repeats", type=int, default=2, help="whole runs, restarting stub and LiteLLM")
    g.add_argument("--requests", type=int, default=5000, help="per cell, at most")
    g.add_argument("--seconds", type=float, default=10.0, help="per cell, at most")
    g.add_argument("--warmup-requests", type=int, default=200)
    g.add_argument("--warmup-seconds", type=float, default=2.0)
    g.add_argument("--timeout", type=float, default=30.0, help="per request, seconds")
    g.add_argument("--pause", type=float, default=0.5, help="seconds between cells")
    g.add_argument("--client-cpu", type=int, default=0, help="load generator and stub")
    g.add_argument("--proxy-cpu", type=int, default=1, help="the proxy under test")
    g.add_argument("--json", type=Path, help="also write every figure to this file")
    args = p.parse_args(argv)
    _validate(p, args)
    return args


def _int_list(text: str) -> list[int]:
    return [int(part) for part in text.split(",") if part.strip()]


def _reply_list(text: str) -> list[bool]:
    kinds = {"json": False, "stream": True}
    try:
        return [kinds[part.strip()] for part in text.split(",") if part.strip()]
    except KeyError as exc:
        raise argparse.ArgumentTypeError(f"--replies takes json and/or stream, not {exc}") from exc


def _validate(p: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    if not args.skip_llmos:
        missing = [
            f"--llmos-{name}"
            for name in ("url", "key", "model")
            if not getattr(args, f"llmos_{name}")
        ]
        if missing:
            p.error(
                f"{', '.join(missing)} missing: give them for a running LLMOS gateway, "
                "or pass --skip-llmos to measure direct and LiteLLM only"
            )
        parts = urlsplit(args.llmos_url)
        if parts.scheme not in ("https", "http") or parts.hostname not in LOOPBACK_HOSTS:
            p.error(f"--llmos-url {args.llmos_url!r} must be http(s)://127.0.0.1:PORT (loopback)")
        if args.llmos_pid is not None and not Path(f"/proc/{args.llmos_pid}").exists():
            p.error(f"--llmos-pid {args.llmos_pid}: no such process")
    allowed = os.sched_getaffinity(0)
    if args.client_cpu == args.proxy_cpu or not {args.client_cpu, args.proxy_cpu} <= allowed:
        p.error(
            f"--client-cpu {args.client_cpu} and --proxy-cpu {args.proxy_cpu} must be two "
            f"different CPUs among {sorted(allowed)}"
        )
    if min(args.concurrency, default=0) < 1 or args.requests < 1 or args.seconds <= 0:
        p.error("--concurrency values, --requests and --seconds must be positive")
