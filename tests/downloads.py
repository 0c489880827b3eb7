"""For the model-download tests: pointing a server at a fake hub, and waiting on a ModelService."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import httpx
import orjson

MGMT = "/apis/management.llmos.ai/v1"


def set_setting(admin: httpx.Client, name: str, value: str) -> None:
    """Set one Setting (e.g. the hub endpoint) through the API."""
    response = admin.patch(
        f"{MGMT}/settings/{name}",
        content=orjson.dumps({"spec": {"value": value}}),
        headers={"Content-Type": "application/merge-patch+json"},
    )
    assert response.status_code == 200, response.text


def wait_until(
    admin: httpx.Client,
    path: str,
    check: Callable[[dict[str, Any]], bool],
    what: str,
    timeout: float = 180.0,
    gone: bool = False,
) -> dict[str, Any]:
    """Poll ``path`` until ``check(status)`` holds (or, with ``gone``, until it is deleted)."""
    deadline = time.monotonic() + timeout
    last: dict[str, Any] = {}
    while time.monotonic() < deadline:
        response = admin.get(path)
        if gone and response.status_code == 404:
            return {}
        if response.status_code == 200:
            last = response.json()
            if check(last.get("status") or {}):
                return last
        time.sleep(0.1)
    raise AssertionError(f"{path}: no {what} in {timeout}s; status: {last.get('status')}")


def condition(status: dict[str, Any], type_: str) -> dict[str, Any]:
    return next((c for c in status.get("conditions") or [] if c["type"] == type_), {})


def wait_available(client: httpx.Client, path: str) -> dict[str, Any]:
    """Wait until the ModelService at ``path`` has its model (``ModelAvailable`` True)."""
    return wait_until(
        client,
        path,
        lambda s: condition(s, "ModelAvailable").get("status") == "True",
        "model available",
    )
