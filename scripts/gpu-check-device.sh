#!/usr/bin/env bash
# Run the GPU checks on a lent GPU machine (the device tool), in one call.
#
#   here:   scripts/device-kit.sh                  # builds .device-kit/ (wheels, ignored by git)
#   there:  set -o pipefail; bash scripts/gpu-check-device.sh 2>&1 | tee "$OUT/gpu-check.log"
#           with carry [".device-kit"]; docs/gpus.md has the exact call
#
# The machine has no network and no .venv: it has python3 (3.12) with torch and
# transformers. This script
#
# 1. makes a venv in /tmp whose own packages (the kit: llmos and its pinned
#    dependencies) come first and the machine's site-packages (torch,
#    transformers, ...) after them, through a .pth file. A venv, not
#    PYTHONPATH: the server starts its engines with a clean environment
#    (runtime/local/environ.py), so they must find llmos through the
#    interpreter itself. If the venv cannot be made, it installs the kit into
#    the machine's own Python instead (the machine is thrown away afterwards);
# 2. puts the kit's bwrap on PATH, where the machine has none and it runs, so
#    that the engine runs in the workload sandbox with its GPU (the check
#    prints its Isolated condition);
# 3. runs scripts/gpu-check.sh with that interpreter (LLMOS_PYTHON) and the
#    transformers engine (LLMOS_GPU_CHECK_ENGINE; scripts/gpu-check-serving.py
#    builds a random SmolLM2-135M-shaped Llama, since llama.cpp and the bundled
#    GGUF are not there), under a time limit;
# 4. copies the reports into $OUT (at most 8 files come back): gpu-check.log
#    (the tee above), gpu-preflight.json, gpu-nvml.json, nvidia-smi.csv,
#    gpu-recording.json, gpu-serving.json, gpu-serving-server.log and
#    engine-logs.tar.gz.
#
# 5. runs bench/metrics.py --gpus nvml (the /metrics scrape and idle overhead with
#    the real GPUs), its JSON into the log.
# 6. runs every `llmos preflight` check for a server node, the disk measured, into the log.
#
# Before step 3, where the kit holds llama.cpp's source (scripts/device-kit.sh --llama-cpp),
# it builds llama-cpp-python with CUDA for the GPU's architecture (LLAMA_BUILD_TIMEOUT,
# default 300 s) and the check runs the llama-cpp engine instead of transformers (unless
# LLMOS_GPU_CHECK_ENGINE=transformers, which skips the build).
#
# Exits with gpu-check.sh's status (124: it ran past GPU_CHECK_TIMEOUT seconds).
# Settings: GPU_CHECK_TIMEOUT (default 360), GPU_CHECK_CC (expected compute
# capability, default: what nvidia-smi says), DEVICE_PYTHON (default python3),
# DEVICE_KIT (default .device-kit), GPU_CHECK_WORK (default /tmp/gpu-check),
# GPU_CHECK_EXTRAS (default 1; 0 skips steps 5 and 6).
set -uo pipefail
cd "$(dirname "$0")/.." || exit 2

out="${OUT:-/tmp/gpu-check-out}"
base_python="${DEVICE_PYTHON:-python3}"
kit="${DEVICE_KIT:-.device-kit}"
work="${GPU_CHECK_WORK:-/tmp/gpu-check}"
venv="$work/venv"
mkdir -p "$out"
rm -rf "$work"
mkdir -p "$work/reports"
started=$SECONDS

step() { echo "== [$((SECONDS - started))s] $*"; }

# shellcheck disable=SC2317  # called by the EXIT trap
collect() {
    local f
    for f in gpu-preflight.json gpu-nvml.json nvidia-smi.csv gpu-recording.json gpu-serving.json; do
        [[ -f "$work/reports/$f" ]] && cp "$work/reports/$f" "$out/"
    done
    [[ -f "$work/reports/gpu-serving-data-server.log" ]] &&
        cp "$work/reports/gpu-serving-data-server.log" "$out/gpu-serving-server.log"
    if [[ -d "$work/reports/gpu-serving-data" ]]; then
        (cd "$work/reports" && find gpu-serving-data -name '*.log' -size -20M -print0 |
            tar -czf "$out/engine-logs.tar.gz" --null -T -) || true
    fi
    echo "reports in \$OUT: $(cd "$out" && echo *)"
}
trap collect EXIT

step "machine"
uname -m
nvidia-smi --query-gpu=index,name,compute_cap,memory.total,driver_version --format=csv,noheader ||
    echo "nvidia-smi failed"
"$base_python" - <<'PY' || echo "python3 cannot import torch"
import sys
import torch
print(f"python {sys.version.split()[0]} at {sys.executable}; torch {torch.__version__}, "
      f"CUDA available: {torch.cuda.is_available()}")
for name in ("transformers", "accelerate", "huggingface_hub", "tokenizers", "safetensors"):
    try:
        module = __import__(name)
        print(f"  {name} {module.__version__}")
    except Exception as exc:
        print(f"  {name}: {exc}")
PY

shopt -s nullglob
wheels=("$kit"/*.whl)
if ((${#wheels[@]} == 0)); then
    echo "FAIL: no wheels in $kit: run scripts/device-kit.sh here and carry .device-kit" >&2
    exit 2
fi

step "installing the kit (${#wheels[@]} wheels)"
python=""
into=() # where the kit went: the venv's site-packages, or the machine's Python itself
# The machine's site directories, as its python3 sees them (a venv's, maybe the system's too).
machine_sites="$("$base_python" -c 'import sys
print([p for p in sys.path if p.rstrip("/").endswith(("site-packages", "dist-packages"))])')"
echo "the machine's site directories: $machine_sites"
if "$base_python" -m venv --without-pip "$venv"; then
    site="$("$venv/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')"
    # After the venv's own packages: the machine's, with their .pth files processed.
    echo "import site; [site.addsitedir(p) for p in $machine_sites]" \
        >"$site/zz-machine-site-packages.pth"
    if "$base_python" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir \
        --target "$site" "${wheels[@]}"; then
        python="$venv/bin/python"
        into=(--target "$site")
    fi
fi
if [[ -z $python ]]; then
    echo "warn: no venv; installing the kit into $base_python's own site-packages"
    "$base_python" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir \
        "${wheels[@]}" || exit 2
    python="$(command -v "$base_python")"
fi
"$python" - <<'PY' || exit 2
import fastapi, llmos, pydantic, torch, transformers
print(f"llmos from {llmos.__file__}; fastapi {fastapi.__version__}, pydantic {pydantic.__version__}, "
      f"torch {torch.__version__} from {torch.__file__}, transformers {transformers.__version__}")
PY

# The workload sandbox: the kit's bwrap where the machine has none and it runs here.
if ! command -v bwrap >/dev/null && [[ -x $kit/bin/bwrap ]]; then
    if "$kit/bin/bwrap" --ro-bind / / --unshare-pid --dev /dev --proc /proc true; then
        PATH="$(cd "$kit/bin" && pwd):$PATH"
        export PATH
        echo "bubblewrap: the kit's ($kit/bin/bwrap)"
    else
        echo "warn: the kit's bwrap does not run here: workloads run without the sandbox"
    fi
fi

# The CUDA libraries the llama.cpp build links (libcudart, libcublas) where its libraries'
# $ORIGIN rpath finds them: engines start with a clean environment, so LD_LIBRARY_PATH would
# not reach them, and the toolkit's lib64 need not be in the loader's cache.
# shellcheck disable=SC2317  # called in the if below
link_cuda_libraries() {
    local lib missing found round linked
    lib="$("$python" -c 'import importlib.util, pathlib
print(pathlib.Path(importlib.util.find_spec("llama_cpp").origin).parent / "lib")')"
    # Linked libraries find their own needs (libcublas: libcublasLt) through the same $ORIGIN,
    # so look again until nothing new is missing; without LD_LIBRARY_PATH, as the engine runs.
    for round in 1 2 3 4; do
        linked=0
        for missing in $(for so in "$lib"/*.so*; do env -u LD_LIBRARY_PATH ldd "$so"; done |
            awk '/not found/ {print $1}' | sort -u); do
            [[ -e $lib/$missing ]] && continue
            found="$(find /usr/local /opt -name "$missing" 2>/dev/null | head -1)"
            if [[ -n $found ]]; then
                ln -sf "$found" "$lib/$missing" && echo "linked $missing -> $found (round $round)"
                linked=1
            else
                echo "warn: $missing, which llama.cpp's libraries need, is nowhere under /usr/local or /opt"
            fi
        done
        ((linked)) || break
    done
}

# llama.cpp with CUDA for this GPU, where the kit holds its source (device-kit.sh --llama-cpp):
# then the check runs the llama-cpp engine, on a GGUF that tests/tiny_gguf.py writes.
if [[ -f $kit/llama-cpp/llama-cpp-python-src.tar.gz && ${LLMOS_GPU_CHECK_ENGINE:-} != transformers ]]; then
    arch="$(nvidia-smi --query-gpu=compute_cap --format=csv,noheader | head -1 | tr -d ' .')"
    [[ -d /usr/local/cuda/bin ]] && PATH="$PATH:/usr/local/cuda/bin"
    echo "nvcc: $(command -v nvcc || echo 'not on PATH: CMake looks for CUDA itself')"
    step "building llama-cpp-python with CUDA for sm_${arch} (limit ${LLAMA_BUILD_TIMEOUT:-300}s)"
    if CMAKE_ARGS="-DGGML_CUDA=on -DCMAKE_CUDA_ARCHITECTURES=${arch} -DLLAVA_BUILD=OFF -DGGML_NATIVE=OFF" \
        CMAKE_BUILD_PARALLEL_LEVEL="$(nproc)" timeout --kill-after=10 "${LLAMA_BUILD_TIMEOUT:-300}" \
        "$base_python" -m pip install -q --no-index --no-deps --no-build-isolation --no-cache-dir \
        "${into[@]}" "$kit/llama-cpp/llama-cpp-python-src.tar.gz" "$kit"/llama-cpp/*.whl &&
        link_cuda_libraries &&
        # As the engine starts: a clean environment, its server module (llama_server's imports).
        env -i PATH=/usr/bin:/bin "$python" -c 'import llama_cpp, llama_cpp.server.app
print("llama-cpp-python", llama_cpp.__version__, "GPU offload:", llama_cpp.llama_supports_gpu_offload())
assert llama_cpp.llama_supports_gpu_offload(), "a CPU build"'; then
        export LLMOS_GPU_CHECK_ENGINE="${LLMOS_GPU_CHECK_ENGINE:-llama-cpp}"
    else
        echo "warn: llama-cpp-python with CUDA did not build or load: the check runs transformers"
    fi
fi

step "scripts/gpu-check.sh (limit ${GPU_CHECK_TIMEOUT:-360}s)"
export LLMOS_PYTHON="$python" PYTHONUNBUFFERED=1
export LLMOS_GPU_CHECK_ENGINE="${LLMOS_GPU_CHECK_ENGINE:-transformers}"
status=0
OUT="$work/reports" timeout --kill-after=10 "${GPU_CHECK_TIMEOUT:-360}" \
    scripts/gpu-check.sh ${GPU_CHECK_CC:+"$GPU_CHECK_CC"} || status=$?
step "gpu-check.sh exit code: $status"

if [[ ${GPU_CHECK_EXTRAS:-1} == 1 ]]; then
    # The /metrics benchmark on this machine's own GPUs (docs/benchmarks.md), JSON into the log.
    step "bench/metrics.py --gpus nvml (limit 120s)"
    timeout --kill-after=10 120 "$python" bench/metrics.py --gpus nvml --scrapes 100 \
        --idle-seconds 30 || echo "warn: bench/metrics.py --gpus nvml exited $?"
    # Every preflight check on this node as a server, the disk measured (docs/preflight.md).
    step "llmos preflight --role server (limit 90s)"
    COLUMNS=160 timeout --kill-after=10 90 "$python" -m llmos preflight --role server \
        --data-dir "$work/preflight-data" || echo "llmos preflight exited $?"
fi
step "done"
exit "$status"
