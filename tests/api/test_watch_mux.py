"""Several watches in one stream (what the dashboard uses): events tagged by path, a
refused path reported on its own line while the others go on."""

from __future__ import annotations

import json
import threading
import uuid
from typing import Any

import httpx

from factories import create_ms, create_user, ms_path
from server import RunningServer

EVENTS = "/apis/node.llmos.ai/v1/namespaces/default/events"
USERS = "/apis/management.llmos.ai/v1/users"


def read_lines(client: httpx.Client, url: str, want: int, found: list[dict[str, Any]]) -> None:
    with client.stream("GET", url, timeout=30) as response:
        assert response.status_code == 200, response.read()
        for text in response.iter_lines():
            if text.strip():
                found.append(json.loads(text))
            if len(found) >= want:
                return


def test_events_of_each_path_carry_its_index(server: RunningServer, admin: httpx.Client) -> None:
    rv_ms = admin.get(ms_path("default")).json()["metadata"]["resourceVersion"]
    rv_ev = admin.get(EVENTS).json()["metadata"]["resourceVersion"]
    url = f"/v1-auth/watch?path={ms_path('default')}&rv={rv_ms}&path={EVENTS}&rv={rv_ev}"
    found: list[dict[str, Any]] = []
    name = f"mux-{uuid.uuid4().hex[:6]}"
    with server.admin_client() as watcher:
        reader = threading.Thread(target=read_lines, args=(watcher, url, 1, found))
        reader.start()
        create_ms(admin, "default", name)
        reader.join(30)
    assert found[0]["stream"] == 0
    assert found[0]["type"] == "ADDED"
    assert found[0]["object"]["metadata"]["name"] == name
    admin.delete(ms_path("default", name))


def test_a_refused_path_gets_its_own_error_line(server: RunningServer, admin: httpx.Client) -> None:
    user = f"muxer-{uuid.uuid4().hex[:6]}"
    create_user(admin, user, "muxer-password-1")
    token = server.login(user, "muxer-password-1")
    nodes = "/apis/node.llmos.ai/v1/nodes"
    rv = admin.get(nodes).json()["metadata"]["resourceVersion"]
    found: list[dict[str, Any]] = []
    with server.client(token) as client:
        read_lines(client, f"/v1-auth/watch?path={USERS}&rv={rv}&path={nodes}&rv={rv}", 1, found)
        assert found[0]["stream"] == 0
        assert found[0]["type"] == "ERROR"
        assert found[0]["object"]["code"] == 403
        bad = client.get(f"/v1-auth/watch?path={nodes}")
        assert bad.status_code == 400
        assert "one rv" in bad.json()["message"]
