#!/usr/bin/env bash
# Check LLMOS on a real NVIDIA GPU machine: preflight, then GPU inventory, scheduling and serving.
#
#   scripts/gpu-check.sh [EXPECTED_COMPUTE_CAPABILITY]     e.g. scripts/gpu-check.sh 9.0
#
# 1. Runs `llmos preflight --output json` (GPU and architecture checks, no disk
#    measurement) and asserts that the gpu check passes, that it found every
#    GPU nvidia-smi lists, and that each GPU's compute capability is the
#    expected one (or, without an argument, what nvidia-smi reports, and >= 6.0).
# 2. Records the GPUs with scripts/record-gpus.py (a fixture for tests/fixtures/gpus),
#    idle and then loaded.
# 3. Runs scripts/gpu-check-serving.py: a real server's Node capacity and
#    GPUDevices against nvidia-smi, a refused over-commit, the bundled model on a
#    2Gi GPU share (allocation in the GPUDevice, CUDA_VISIBLE_DEVICES, GPU memory
#    in use per nvidia-smi), chat and tokens/s, and the release on delete.
# Writes the reports, the NVML reading (a fixture for tests/preflight/fixtures/nvml)
# and the recording to $OUT, or to a temporary directory. Exits non-zero if any part failed.
#
# 0. Installs first: `scripts/setup --transformers` (the locked .venv with torch's CUDA
#    build; warm, seconds), unless LLMOS_GPU_CHECK_SKIP_SETUP=1 or LLMOS_PYTHON=/path/to/python,
#    an interpreter that already has llmos (`python -m llmos`; scripts/gpu-check-device.sh
#    installs its kit and runs this with it on a lent GPU machine). LLMOS_GPU_CHECK_ENGINE picks the
# engine of step 3 (see scripts/gpu-check-serving.py).
set -euo pipefail
cd "$(dirname "$0")/.."

expected="${1:-}"
out="${OUT:-$(mktemp -d)}"
mkdir -p "$out"

if [[ -n "${LLMOS_PYTHON:-}" ]]; then
    # An interpreter that has llmos installed (scripts/gpu-check-device.sh on a lent GPU machine).
    llmos=("$LLMOS_PYTHON" -m llmos)
    python="$LLMOS_PYTHON"
else
    # Step 0, install: the locked venv with the transformers engine (torch's CUDA build), as
    # scripts/setup makes it; warm, it only checks. LLMOS_GPU_CHECK_SKIP_SETUP=1 uses .venv as is.
    if [[ "${LLMOS_GPU_CHECK_SKIP_SETUP:-}" != 1 ]]; then
        scripts/setup --transformers
    fi
    llmos=(.venv/bin/llmos)
    python=.venv/bin/python
fi
# Until `llmos` has more than one command, Typer runs the lone command as the root.
if ! "${llmos[@]}" preflight --help >/dev/null 2>&1; then
    # shellcheck disable=SC2206  # $python may be two words (uv run python)
    llmos=($python -m llmos.cli.preflight)
else
    llmos+=(preflight)
fi

status=0
"${llmos[@]}" --output json --quick --check arch --check gpu >"$out/gpu-preflight.json" || status=$?
echo "llmos preflight exit code: $status (report in $out/gpu-preflight.json)"

nvidia_smi_caps=""
if command -v nvidia-smi >/dev/null; then
    nvidia-smi --query-gpu=name,compute_cap,memory.total,driver_version --format=csv,noheader \
        | tee "$out/nvidia-smi.csv"
    nvidia_smi_caps="$(nvidia-smi --query-gpu=compute_cap --format=csv,noheader | tr -d ' ' | paste -sd, -)"
fi

failed=0
$python - "$out" "$expected" "$nvidia_smi_caps" "$status" <<'PY' || failed=1
import json
import sys
from pathlib import Path

out, expected, smi_caps, status = Path(sys.argv[1]), sys.argv[2], sys.argv[3], int(sys.argv[4])
report = json.loads((out / "gpu-preflight.json").read_text())
gpu = next(r for r in report["results"] if r["id"] == "gpu")
print(f"gpu: {gpu['status']}: {gpu['measured']}")
nvml = gpu["data"].get("nvml") or {}
(out / "gpu-nvml.json").write_text(json.dumps(nvml, indent=2) + "\n")
problems = []
if gpu["status"] != "pass":
    problems.append(f"gpu check is {gpu['status']}: {gpu['fix']}")
if status != 0:
    problems.append(f"llmos preflight exited {status}")
devices = nvml.get("devices") or []
if not devices:
    problems.append("NVML reported no GPU")
if not gpu["data"].get("pciDevices"):
    problems.append("no NVIDIA GPU found on the PCI bus")
caps = [d["computeCapability"] for d in devices]
if smi_caps:
    smi = smi_caps.split(",")
    if len(smi) != len(devices):
        problems.append(f"nvidia-smi lists {len(smi)} GPUs, preflight {len(devices)}")
    if not expected and sorted(smi) != sorted(caps):
        problems.append(f"compute capabilities {caps} differ from nvidia-smi's {smi}")
for device in devices:
    cap = device["computeCapability"]
    major, minor = (int(p) for p in cap.split("."))
    if expected and cap != expected:
        problems.append(f"GPU {device['index']} {device['name']}: cc {cap}, expected {expected}")
    if (major, minor) < (6, 0):
        problems.append(f"GPU {device['index']} {device['name']}: cc {cap} < 6.0")
if problems:
    print("FAIL:\n  " + "\n  ".join(problems))
    sys.exit(1)
print(f"OK: {len(devices)} GPU(s), compute capability {', '.join(caps)}, "
      f"driver {nvml.get('driverVersion')}")
PY

echo "== recording the GPUs (scripts/record-gpus.py) =="
# One idle reading, then three with the GPUs busy (a matrix multiply each, through torch).
$python scripts/record-gpus.py --readings 4 --interval 1 --load -o "$out/gpu-recording.json" || failed=1

echo "== inventory, scheduling and serving on a real server (scripts/gpu-check-serving.py) =="
$python scripts/gpu-check-serving.py "$out" || failed=1

exit "$failed"
