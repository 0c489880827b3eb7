"""A zero-work HTTPS server for ``bench/notebooks.py``: N MiB from memory on every GET.

It runs as ``llmos server`` serves (uvicorn, uvloop, httptools, TLS with the
server's own certificate), in 1 MiB pieces. Downloading from it with the
proxy benchmark's client gives the TLS ceiling: what a proxy that cost
nothing would reach, against the notebook's own plain-HTTP port.

    .venv/bin/python bench/https_blob.py PORT MEGABYTES CERT KEY
"""

from __future__ import annotations

import sys
from typing import Any

import uvicorn

PIECE = 1 << 20


def app_for(size: int) -> Any:
    piece = b"\0" * PIECE

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        length = str(size).encode()
        headers = [(b"content-type", b"application/octet-stream"), (b"content-length", length)]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        left = size
        while left:
            n = min(left, PIECE)
            left -= n
            await send({"type": "http.response.body", "body": piece[:n], "more_body": bool(left)})

    return app


def main() -> None:
    port, megabytes, cert, key = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3], sys.argv[4]
    uvicorn.run(
        app_for(megabytes << 20),
        host="127.0.0.1",
        port=port,
        ssl_certfile=cert,
        ssl_keyfile=key,
        loop="uvloop",
        http="httptools",
        log_level="warning",
        access_log=False,
    )


if __name__ == "__main__":
    main()
