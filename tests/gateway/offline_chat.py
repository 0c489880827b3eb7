"""Run inside a network namespace of its own (``unshare --net``): no interface but loopback.

Starts ``llmos server --serve-bundled-model`` in DATA_DIR, waits for the bundled SmolLM2,
chats with it through the official ``openai`` client, and prints what it saw as one JSON
line. Any attempt to reach the network from in here fails at once.
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parents[1]))

from gateway.conftest import PUBLIC_MS, openai_client, wait_phase
from server import admin_server


def network_reachable() -> bool:
    try:
        socket.create_connection(("1.1.1.1", 443), timeout=3).close()
    except OSError:
        return False
    return True


def main(data_dir: Path) -> None:
    subprocess.run(["ip", "link", "set", "lo", "up"], check=True)
    interfaces = sorted(name for _, name in socket.if_nameindex())
    with admin_server(data_dir, "--serve-bundled-model") as running:
        with running.admin_client() as admin:
            wait_phase(admin, f"{PUBLIC_MS}/smollm2")
        client = openai_client(running, str(running.admin_token))
        reply = client.chat.completions.create(
            model="smollm2", messages=[{"role": "user", "content": "Say hi."}], max_tokens=8
        )
    said = {
        "interfaces": interfaces,
        "networkReachable": network_reachable(),
        "reply": reply.choices[0].message.content,
    }
    print(json.dumps(said))


if __name__ == "__main__":
    main(Path(sys.argv[1]))
