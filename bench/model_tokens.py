"""Tokens per second of the real bundled model, direct to llama.cpp versus through the gateway.

Starts ``llmos server --serve-bundled-model`` on loopback, waits until
SmolLM2 is Ready, then alternates the same non-streamed chat request (64
tokens, temperature 0) direct to the replica's endpoint and through the
gateway over HTTPS, and reports completion tokens per second for each.

    uv run python bench/model_tokens.py [--requests 10]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import httpx

from llmos.engines.keys import EngineKeys

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
from server import admin_server

MS = "/apis/ml.llmos.ai/v1/namespaces/llmos-public/modelservices/smollm2"
BODY = {
    "model": "smollm2",
    "messages": [{"role": "user", "content": "Tell me about the history of tea."}],
    "max_tokens": 64,
    "temperature": 0,
}


def timed(client: httpx.Client, url: str) -> float:
    started = time.perf_counter()
    reply = client.post(url, json=BODY)
    reply.raise_for_status()
    return float(reply.json()["usage"]["completion_tokens"]) / (time.perf_counter() - started)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--requests", type=int, default=10)
    args = parser.parse_args()
    with (
        tempfile.TemporaryDirectory(prefix="llmos-tokens-") as tmp,
        admin_server(Path(tmp) / "data", "--serve-bundled-model", check_exit=False) as server,
        server.admin_client() as gateway,
        httpx.Client(timeout=120) as direct,
    ):
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline:
            status = gateway.get(MS).json().get("status") or {}
            if status.get("phase") == "Ready":
                break
            time.sleep(0.2)
        endpoint = status["endpoints"][0]
        # The replica answers only its key, which the gateway holds: read it as the server does.
        uid = gateway.get(MS).json()["metadata"]["uid"]
        key = EngineKeys.of(Path(tmp) / "data").for_uid(uid)
        direct.headers["Authorization"] = f"Bearer {key}"
        timed(direct, f"{endpoint}/v1/chat/completions")  # warm-up
        timed(gateway, "/v1/chat/completions")
        direct_tps, gateway_tps = [], []
        for _ in range(args.requests):
            direct_tps.append(timed(direct, f"{endpoint}/v1/chat/completions"))
            gateway_tps.append(timed(gateway, "/v1/chat/completions"))
    d, g = statistics.median(direct_tps), statistics.median(gateway_tps)
    print(f"direct   median {d:7.1f} tokens/s  ({', '.join(f'{x:.0f}' for x in direct_tps)})")
    print(f"gateway  median {g:7.1f} tokens/s  ({', '.join(f'{x:.0f}' for x in gateway_tps)})")
    print(f"gateway / direct = {g / d:.3f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
