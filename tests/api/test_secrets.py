"""Secrets over the real API: values go in and never come out; who may touch them."""

from __future__ import annotations

import sqlite3
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import orjson
import pytest

from factories import bind, create_namespace, create_secret, create_user, secret, secret_path
from server import RunningServer

VALUE = "hf_value_that_must_never_come_back"


def _ns(admin: httpx.Client) -> str:
    name = f"s-{uuid.uuid4().hex[:8]}"
    create_namespace(admin, name)
    return name


def stored_values(server: RunningServer, namespace: str, name: str) -> dict[str, str]:
    """What the store keeps beside the object: read from the database, as only the server can."""
    conn = sqlite3.connect(f"file:{server.data_dir / 'llmos.db'}?mode=ro", uri=True)
    try:
        row = conn.execute(
            "SELECT s.data FROM objects o JOIN secrets s ON s.uid = o.uid WHERE o.resource = ?"
            " AND o.namespace = ? AND o.name = ?",
            ("secrets.management.llmos.ai", namespace, name),
        ).fetchone()
    finally:
        conn.close()
    assert row is not None, f"no stored values for {namespace}/{name}"
    data: dict[str, str] = orjson.loads(row[0])["data"]
    return data


def test_values_are_never_returned(server: RunningServer, admin: httpx.Client) -> None:
    ns = _ns(admin)
    with admin.stream(
        "GET", secret_path(ns), params={"watch": "true", "timeoutSeconds": "2"}
    ) as watch:
        created = create_secret(admin, ns, "hf", token=VALUE, other="second-value")
        streamed = watch.read().decode()
    assert created["spec"] == {"keys": ["other", "token"]}
    got = admin.get(secret_path(ns, "hf"))
    listed = admin.get(secret_path(ns))
    everywhere = admin.get("/apis/management.llmos.ai/v1/secrets")
    as_yaml = admin.get(secret_path(ns, "hf"), headers={"Accept": "application/yaml"})
    assert got.json()["spec"] == {"keys": ["other", "token"]}
    assert "hf" in [item["metadata"]["name"] for item in listed.json()["items"]]
    assert '"hf"' in streamed  # the watch saw the Secret...
    for text in (streamed, got.text, listed.text, everywhere.text, as_yaml.text):
        assert VALUE not in text and "second-value" not in text  # ...but none of its values
    assert stored_values(server, ns, "hf") == {"token": VALUE, "other": "second-value"}


def test_updates_keep_set_and_drop_values(server: RunningServer, admin: httpx.Client) -> None:
    ns = _ns(admin)
    create_secret(admin, ns, "creds", token="one")

    # A merge patch of stringData adds a key and keeps the others.
    patched = admin.patch(
        secret_path(ns, "creds"),
        content=orjson.dumps({"spec": {"stringData": {"extra": "two"}}}),
        headers={"Content-Type": "application/merge-patch+json"},
    )
    assert patched.status_code == 200, patched.text
    assert patched.json()["spec"] == {"keys": ["extra", "token"]}
    assert stored_values(server, ns, "creds") == {"token": "one", "extra": "two"}

    # A PUT of what GET returned (keys only) changes nothing; editing one value keeps the rest.
    current = admin.get(secret_path(ns, "creds")).json()
    assert admin.put(secret_path(ns, "creds"), json=current).status_code == 200
    current["spec"]["stringData"] = {"token": "rotated"}
    assert admin.put(secret_path(ns, "creds"), json=current).status_code == 200
    assert stored_values(server, ns, "creds") == {"token": "rotated", "extra": "two"}

    # A key left out of spec.keys is removed.
    current = admin.get(secret_path(ns, "creds")).json()
    current["spec"]["keys"] = ["token"]
    dropped = admin.put(secret_path(ns, "creds"), json=current)
    assert dropped.json()["spec"] == {"keys": ["token"]}
    assert stored_values(server, ns, "creds") == {"token": "rotated"}

    # spec.keys cannot name a key that has no value.
    current = admin.get(secret_path(ns, "creds")).json()
    current["spec"]["keys"] = ["token", "ghost"]
    refused = admin.put(secret_path(ns, "creds"), json=current)
    assert refused.status_code == 422
    assert refused.json()["details"]["causes"][0]["field"] == "spec.keys"
    assert "'ghost'" in refused.json()["message"]

    bad_key = admin.post(secret_path(ns), json=secret("bad", **{"no spaces": "x"}))
    assert bad_key.status_code == 422
    assert "secret key 'no spaces' is invalid" in bad_key.json()["message"]


ROLES = ("owner", "member", "readonly", "outsider")
VERBS = ("create", "get", "list", "update", "patch", "delete")


@pytest.fixture(scope="module")
def team(server: RunningServer) -> Iterator[tuple[str, dict[str, str]]]:
    """A namespace with one user per role in it (and an outsider): their tokens."""
    with server.admin_client() as admin:
        ns = _ns(admin)
        suffix = ns.removeprefix("s-")
        tokens = {}
        for role in ROLES:
            user = f"{role}-{suffix}"
            create_user(admin, user, f"{user}-password")
            if role != "outsider":
                bind(admin, ns, user, f"namespace-{role}")
            tokens[role] = server.login(user, f"{user}-password")
    yield ns, tokens


def _attempt(client: httpx.Client, admin: httpx.Client, ns: str, verb: str) -> int:
    name = f"sec-{uuid.uuid4().hex[:8]}"
    if verb == "create":
        return client.post(secret_path(ns), json=secret(name, token="t")).status_code
    create_secret(admin, ns, name, token="t")
    if verb == "get":
        return client.get(secret_path(ns, name)).status_code
    if verb == "list":
        return client.get(secret_path(ns)).status_code
    if verb == "update":
        return client.put(secret_path(ns, name), json=secret(name, token="u")).status_code
    if verb == "patch":
        body: dict[str, Any] = {"spec": {"stringData": {"more": "v"}}}
        return client.patch(
            secret_path(ns, name),
            content=orjson.dumps(body),
            headers={"Content-Type": "application/merge-patch+json"},
        ).status_code
    return client.delete(secret_path(ns, name)).status_code


CASES = [(role, verb) for role in ROLES for verb in VERBS]


@pytest.mark.parametrize(("role", "verb"), CASES, ids=["-".join(c) for c in CASES])
def test_rbac(
    server: RunningServer,
    admin: httpx.Client,
    team: tuple[str, dict[str, str]],
    role: str,
    verb: str,
) -> None:
    ns, tokens = team
    with server.client(tokens[role]) as client:
        status = _attempt(client, admin, ns, verb)
    if role in ("owner", "member"):
        assert status in (200, 201), f"{role} should be allowed to {verb} secrets"
    else:
        # namespace-readonly sees the namespace's workloads but not even a Secret's keys.
        assert status == 403, f"{role} should be denied {verb} on secrets (got {status})"
