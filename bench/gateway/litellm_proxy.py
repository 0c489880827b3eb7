"""The LiteLLM proxy as the benchmark's peer: its config, its environment, starting it.

``run.py`` starts it once per run, pinned to the proxy CPU, pointed at the
stub upstream, with the production settings from ``shared/BENCHMARKING.md``:
one worker, ``LITELLM_LOG=ERROR``, ``LITELLM_MODE=PRODUCTION``, no database
(no ``DATABASE_URL``), spend and error logs off, no callbacks,
``num_retries: 0``, and ``LITELLM_LOCAL_MODEL_COST_MAP=True`` so that it
fetches nothing. It is installed by ``setup-litellm.sh`` into its own venv.
It listens on plain HTTP, as it does by default.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import procs
from procs import BenchError, Managed

DEFAULT_VENV = Path(
    os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache"), "llmos-bench", "litellm-venv"
)
# LiteLLM refuses to start without a master key; with one, every request is
# authenticated, as through LLMOS.
MASTER_KEY = "sk-llmos-bench-litellm"
READY_TIMEOUT_S = 180.0

_CONFIG = """\
# Written by bench/gateway/run.py: LiteLLM's production settings, no database.
model_list:
  - model_name: {model}
    litellm_params:
      model: openai/{model}
      api_base: http://127.0.0.1:{stub_port}/v1
      api_key: sk-stub
litellm_settings:
  num_retries: 0
  request_timeout: {timeout:.0f}
  set_verbose: false
  callbacks: []
  success_callback: []
  failure_callback: []
router_settings:
  num_retries: 0
general_settings:
  master_key: {key}
  disable_spend_logs: true
  disable_error_logs: true
"""


def _environment() -> dict[str, str]:
    # No database, no Redis, no proxy for loopback, no stray master key. .pyc
    # writing back on: LiteLLM re-imports a failing module on every request.
    env = {
        name: value
        for name, value in os.environ.items()
        if not name.upper().startswith(("DATABASE_", "REDIS_", "HTTP_PROXY", "HTTPS_PROXY"))
        and name not in ("PYTHONDONTWRITEBYTECODE", "LITELLM_MASTER_KEY")
    }
    env.update(
        LITELLM_LOG="ERROR",
        LITELLM_MODE="PRODUCTION",
        LITELLM_LOCAL_MODEL_COST_MAP="True",
        NO_PROXY="127.0.0.1,localhost",
        no_proxy="127.0.0.1,localhost",
    )
    return env


def start(
    *,
    venv: Path,
    port: int,
    stub_port: int,
    model: str,
    timeout_s: float,
    cpu: int,
    workdir: Path,
    log_name: str,
) -> tuple[Managed, float]:
    """Start LiteLLM and wait for ``/health/liveliness``; return it and its start-up seconds."""
    executable = venv / "bin" / "litellm"
    if not executable.exists():
        raise BenchError(
            f"no LiteLLM at {executable}; run bench/gateway/setup-litellm.sh, "
            "pass --litellm-venv DIR, or pass --skip-litellm"
        )
    procs.ensure_port_free(port, "litellm")
    config = workdir / "litellm.yaml"
    config.write_text(
        _CONFIG.format(model=model, stub_port=stub_port, timeout=timeout_s, key=MASTER_KEY)
    )
    argv = [str(executable), "--config", str(config), "--host", "127.0.0.1"]
    argv += ["--port", str(port), "--num_workers", "1"]
    managed = procs.start(
        "LiteLLM",
        argv,
        log_path=workdir / log_name,
        cpu=cpu,
        env=_environment(),
        cwd=workdir,
    )
    try:
        ready_s = procs.wait_ready(
            managed, f"http://127.0.0.1:{port}/health/liveliness", READY_TIMEOUT_S
        )
    except BaseException:
        managed.stop()
        raise
    return managed, ready_s


def version(venv: Path) -> str | None:
    """The installed LiteLLM version, read from its own interpreter."""
    python = venv / "bin" / "python"
    if not python.exists():
        return None
    done = subprocess.run(
        [str(python), "-c", "from importlib.metadata import version; print(version('litellm'))"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    return done.stdout.strip() or None
