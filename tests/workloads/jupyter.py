"""A tiny Jupyter client for tests: start a kernel through the LLMOS proxy and run code on it
over the kernel's WebSocket (the legacy JSON protocol)."""

from __future__ import annotations

import json
import ssl
import time
import uuid
from typing import Any

import httpx
from websockets.sync.client import connect


def start_kernel(client: httpx.Client, base: str) -> str:
    response = client.post(f"{base}api/kernels", json={"name": "python3"})
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


def _channels(url: str, base: str, kernel: str, token: str, ssl_context: ssl.SSLContext) -> Any:
    return connect(
        url.replace("https://", "wss://") + f"{base}api/kernels/{kernel}/channels",
        ssl=ssl_context,
        additional_headers={"Authorization": f"Bearer {token}"},
        # Jupyter answers the upgrade once the kernel answers kernel_info, or after its
        # kernel_info_timeout (60 s) if that answer is lost; the kernel works either way.
        open_timeout=90,
    )


def _execute_request(code: str) -> dict[str, Any]:
    return {
        "header": {
            "msg_id": uuid.uuid4().hex,
            "username": "test",
            "session": uuid.uuid4().hex,
            "msg_type": "execute_request",
            "version": "5.3",
        },
        "parent_header": {},
        "metadata": {},
        "content": {
            "code": code,
            "silent": False,
            "store_history": False,
            "user_expressions": {},
            "allow_stdin": False,
            "stop_on_error": True,
        },
        "channel": "shell",
        "buffers": [],
    }


def submit(
    url: str, base: str, kernel: str, token: str, ssl_context: ssl.SSLContext, code: str
) -> None:
    """Start ``code`` and return once the kernel is busy with it, without waiting for it to
    end (code that kills its kernel)."""
    request = _execute_request(code)
    with _channels(url, base, kernel, token, ssl_context) as ws:
        ws.send(json.dumps(request))
        while True:
            message = json.loads(ws.recv(timeout=60))
            if (
                message.get("parent_header", {}).get("msg_id") == request["header"]["msg_id"]
                and message["header"]["msg_type"] == "status"
                and message["content"]["execution_state"] == "busy"
            ):
                return


def execute(
    url: str, base: str, kernel: str, token: str, ssl_context: ssl.SSLContext, code: str
) -> dict[str, Any]:
    """Run ``code``; return the execute_reply content and the text it printed.

    Replies (shell) and output (iopub) come on different channels in any order:
    the request is over once both the reply and the iopub ``idle`` status are in.
    """
    request = _execute_request(code)
    msg_id = request["header"]["msg_id"]
    printed: list[str] = []
    reply: dict[str, Any] | None = None
    idle = False
    deadline = time.monotonic() + 60
    with _channels(url, base, kernel, token, ssl_context) as ws:
        ws.send(json.dumps(request))
        while time.monotonic() < deadline:
            message = json.loads(ws.recv(timeout=60))
            if message.get("parent_header", {}).get("msg_id") != msg_id:
                continue
            kind = message["header"]["msg_type"]
            if kind == "stream":
                printed.append(message["content"]["text"])
            elif kind == "execute_reply":
                reply = message["content"]
            elif kind == "status" and message["content"]["execution_state"] == "idle":
                idle = True  # the kernel's last word on this request (iopub)
            if reply is not None and idle:
                return {**reply, "printed": "".join(printed)}
    raise AssertionError("no execute_reply and idle status within 60 s")
