#!/usr/bin/env bash
# Install the LiteLLM proxy, the peer the gateway benchmark compares against,
# into its own virtual environment OUTSIDE the repository, so that none of its
# ~100 pinned dependencies touch the project's lock file.
#
#   bench/gateway/setup-litellm.sh            # -> ~/.cache/llmos-bench/litellm-venv
#   LITELLM_VENV=/some/dir bench/gateway/setup-litellm.sh
#
# litellm[proxy]==1.108.7 is the newest release whose [proxy] extra installs
# from PyPI on these machines (newer ones pin packages PyPI lacks); see
# shared/BENCHMARKING.md. Re-running is cheap: uv skips what is installed.
set -euo pipefail

LITELLM_VERSION="${LITELLM_VERSION:-1.108.7}"
VENV="${LITELLM_VENV:-${XDG_CACHE_HOME:-$HOME/.cache}/llmos-bench/litellm-venv}"
PYTHON="${LITELLM_PYTHON:-3.11}"
source "$(dirname "$0")/../../scripts/registries.sh"  # the system's certificates

mkdir -p "$(dirname "$VENV")"
if [[ ! -x "$VENV/bin/python" ]]; then
    uv venv --python "$PYTHON" "$VENV"
fi
# --compile-bytecode: pip writes .pyc files at install time and uv does not. It
# matters here: LiteLLM 1.108.7 retries a failing import (its OTel logger, whose
# opentelemetry-sdk is not in the [proxy] extra) on every request, and without
# .pyc files (this environment sets PYTHONDONTWRITEBYTECODE=1) each retry
# recompiles the module: about 17 ms CPU per request instead of about 8 ms.
# uv skips compiling when nothing is (re)installed, so compile explicitly too;
# compileall leaves up-to-date .pyc files alone.
uv pip install --python "$VENV/bin/python" --compile-bytecode "litellm[proxy]==${LITELLM_VERSION}"
SITE="$("$VENV/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')"
"$VENV/bin/python" -m compileall -q -j 0 "$SITE" >/dev/null \
    || echo "note: compileall could not compile some files in $SITE (harmless)" >&2

LITELLM_LOCAL_MODEL_COST_MAP=True "$VENV/bin/python" -c "import litellm.proxy.proxy_server" 2>/dev/null \
    || { echo "litellm proxy does not import from $VENV" >&2; exit 1; }
echo "LiteLLM ${LITELLM_VERSION} proxy ready: $VENV/bin/litellm"
