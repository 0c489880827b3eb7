"""Run the gateway benchmark with all three paths: direct, LLMOS and LiteLLM.

Starts a real ``llmos server`` on loopback (fresh data dir), deploys a
ModelService whose ``spec.endpoint`` is the benchmark's stub upstream, makes an
API key, runs ``run.py`` against it, and stops the server.

    uv run python bench/gateway/with_llmos.py [run.py options, e.g. --json out.json]
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent.parent / "tests"))
from server import admin_server  # noqa: E402

STUB_PORT = 18080
MODEL = "stub-model"


def main() -> int:
    with (
        tempfile.TemporaryDirectory(prefix="llmos-gw-bench-") as tmp,
        admin_server(Path(tmp) / "data", "--skip-preflight", check_exit=False) as server,
    ):
        with server.admin_client() as admin:
            admin.post(
                "/apis/ml.llmos.ai/v1/namespaces/default/modelservices",
                json={
                    "apiVersion": "ml.llmos.ai/v1",
                    "kind": "ModelService",
                    "metadata": {"name": MODEL},
                    "spec": {"model": MODEL, "endpoint": f"http://127.0.0.1:{STUB_PORT}"},
                },
            ).raise_for_status()
            key = admin.post("/v1-auth/apikeys", json={"description": "bench"}).json()["token"]
        command = [
            sys.executable,
            str(HERE / "run.py"),
            "--stub-port",
            str(STUB_PORT),
            "--llmos-url",
            server.url,
            "--llmos-key",
            key,
            "--llmos-ca",
            server.ca,
            "--llmos-model",
            MODEL,
            "--llmos-pid",
            str(server.pid),
            "--llmos-wait",
            "60",
            *sys.argv[1:],
        ]
        return subprocess.call(command)


if __name__ == "__main__":
    raise SystemExit(main())
