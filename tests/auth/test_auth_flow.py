"""Bootstrap, first login, sessions, API keys, revocation and brute-force protection."""

from __future__ import annotations

import stat
import time
from pathlib import Path

import httpx
import pytest

from factories import create_user
from llmos._lib.tls import fingerprint
from server import ADMIN_PASSWORD, RunningServer


def _login(server: RunningServer, user: str, password: str, **extra: object) -> httpx.Response:
    with server.client() as client:
        return client.post(
            "/v1-public/auth/login", json={"username": user, "password": password, **extra}
        )


def test_bootstrap_and_first_login(fresh_server: RunningServer) -> None:
    path = fresh_server.data_dir / "bootstrap-password"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    bootstrap = path.read_text().strip()
    assert "one-time password" in fresh_server.log() and bootstrap in fresh_server.log()
    # With the CA's fingerprint, to compare with the one `llmos login` shows.
    ca = Path(fresh_server.ca).read_text()
    assert f"SHA-256 fingerprint\n      {fingerprint(ca)}\n" in fresh_server.log()

    response = _login(fresh_server, "admin", bootstrap)
    assert response.status_code == 200
    assert response.json()["mustChangePassword"] is True
    token = response.json()["token"]

    with fresh_server.client(token) as client:
        blocked = client.get("/apis/ml.llmos.ai/v1/namespaces/default/modelservices")
        assert blocked.status_code == 403
        assert "must set a new password" in blocked.json()["message"]
        assert client.get("/v1-auth/me").json()["mustChangePassword"] is True

        short = client.post(
            "/v1-auth/first-login", json={"newPassword": "short", "serverUrl": fresh_server.url}
        )
        assert short.status_code == 422
        assert short.json()["message"] == (
            "the new password must be at least 12 characters long (it has 5)"
        )
        assert short.json()["details"]["causes"][0]["field"] == "newPassword"
        no_url = client.post(
            "/v1-auth/first-login", json={"newPassword": ADMIN_PASSWORD, "serverUrl": "ftp://x"}
        )
        assert no_url.status_code == 422
        assert no_url.json()["details"]["causes"][0]["field"] == "serverUrl"

        done = client.post(
            "/v1-auth/first-login",
            json={"newPassword": ADMIN_PASSWORD, "serverUrl": fresh_server.url},
        )
        assert done.status_code == 200, done.text
        assert (
            client.get("/apis/ml.llmos.ai/v1/namespaces/default/modelservices").status_code == 200
        )
        again = client.post(
            "/v1-auth/first-login",
            json={"newPassword": ADMIN_PASSWORD + "x", "serverUrl": fresh_server.url},
        )
        assert again.status_code == 403

    assert not path.exists()
    assert _login(fresh_server, "admin", bootstrap).status_code == 401
    assert _login(fresh_server, "admin", ADMIN_PASSWORD).status_code == 200
    with fresh_server.client() as anonymous:
        info = anonymous.get("/v1-public/info").json()
    assert info["firstLogin"] is False and info["serverUrl"] == fresh_server.url

    # A restart does not make a new admin or a new bootstrap password.
    assert fresh_server.stop() == 0
    fresh_server.start()
    assert not path.exists()
    assert _login(fresh_server, "admin", ADMIN_PASSWORD).status_code == 200


def test_session_ttl_expires(server: RunningServer) -> None:
    response = _login(server, "admin", ADMIN_PASSWORD, ttlSeconds=2)
    body = response.json()
    assert body["expiresAt"]
    with server.client(body["token"]) as client:
        assert client.get("/v1-auth/me").status_code == 200
        deadline = time.monotonic() + 15
        status = 200
        while time.monotonic() < deadline and status == 200:
            time.sleep(0.25)
            status = client.get("/v1-auth/me").status_code
        assert status == 401


def test_default_session_ttl_is_720_minutes(server: RunningServer) -> None:
    from datetime import UTC, datetime

    body = _login(server, "admin", ADMIN_PASSWORD).json()
    expires = datetime.fromisoformat(body["expiresAt"].replace("Z", "+00:00"))
    minutes = (expires - datetime.now(UTC)).total_seconds() / 60
    assert 718 < minutes <= 720


def test_logout_revokes_the_token(server: RunningServer) -> None:
    token = _login(server, "admin", ADMIN_PASSWORD).json()["token"]
    with server.client(token) as client:
        assert client.post("/v1-auth/logout").status_code == 200
        after = client.get("/v1-auth/me")
    assert after.status_code == 401
    assert "revoked" in after.json()["message"]


@pytest.mark.parametrize(
    "header",
    ["", "Bearer", "Bearer nodot", "Bearer x.y", "Basic YWRtaW46cGFzcw==", "Bearer " + "a." * 300],
)
def test_bad_credentials_are_401(server: RunningServer, header: str) -> None:
    with server.client() as client:
        response = client.get("/v1-auth/me", headers={"Authorization": header} if header else {})
    assert response.status_code == 401
    assert response.json()["reason"] == "Unauthorized"
    assert response.headers["www-authenticate"].startswith("Bearer")


def test_api_keys_are_shown_once_and_can_be_revoked(
    server: RunningServer, admin: httpx.Client
) -> None:
    created = admin.post("/v1-auth/apikeys", json={"description": "ci", "scopes": ["m1"]})
    assert created.status_code == 201
    key = created.json()["token"]
    name = created.json()["name"]
    listed = admin.get("/v1-auth/apikeys").json()["items"]
    mine = [k for k in listed if k["name"] == name]
    assert mine and mine[0]["scopes"] == ["m1"] and key not in str(listed)
    token_obj = admin.get(f"/apis/management.llmos.ai/v1/tokens/{name}").text
    assert key.split(".", 1)[1] not in token_obj

    with server.client(key) as with_key:
        assert with_key.get("/v1-auth/me").json()["token"]["type"] == "apikey"
        refused = with_key.post("/v1-auth/apikeys", json={})
        assert refused.status_code == 403
    assert admin.delete(f"/v1-auth/apikeys/{name}").status_code == 200
    with server.client(key) as with_key:
        assert with_key.get("/v1-auth/me").status_code == 401
    assert admin.delete(f"/v1-auth/apikeys/{name}").status_code == 404


def test_tokens_cannot_be_minted_through_the_resource_api(admin: httpx.Client) -> None:
    body = {
        "apiVersion": "management.llmos.ai/v1",
        "kind": "Token",
        "metadata": {"name": "forged"},
        "spec": {"userName": "admin"},
    }
    response = admin.post("/apis/management.llmos.ai/v1/tokens", json=body)
    assert response.status_code == 405
    assert "/v1-auth/apikeys" in response.json()["message"]


def test_disabled_user_cannot_log_in_or_use_tokens(
    server: RunningServer, admin: httpx.Client
) -> None:
    create_user(admin, "dora", "dora-password-1")
    token = _login(server, "dora", "dora-password-1").json()["token"]
    admin.patch(
        "/apis/management.llmos.ai/v1/users/dora",
        content=b'{"spec":{"active":false}}',
        headers={"Content-Type": "application/merge-patch+json"},
    ).raise_for_status()
    with server.client(token) as client:
        assert client.get("/v1-auth/me").status_code == 401
    refused = _login(server, "dora", "dora-password-1")
    assert refused.status_code == 403 and "disabled" in refused.json()["message"]


def test_password_change_ends_other_sessions(server: RunningServer, admin: httpx.Client) -> None:
    create_user(admin, "pat", "pat-password-12")
    first = _login(server, "pat", "pat-password-12").json()["token"]
    second = _login(server, "pat", "pat-password-12").json()["token"]
    with server.client(second) as client:
        wrong = client.post(
            "/v1-auth/password", json={"currentPassword": "nope", "newPassword": "pat-password-34"}
        )
        assert wrong.status_code == 403
        ok = client.post(
            "/v1-auth/password",
            json={"currentPassword": "pat-password-12", "newPassword": "pat-password-34"},
        )
        assert ok.status_code == 200, ok.text
        assert client.get("/v1-auth/me").status_code == 200
    with server.client(first) as client:
        assert client.get("/v1-auth/me").status_code == 401
    assert _login(server, "pat", "pat-password-34").status_code == 200


def test_deleting_a_user_removes_their_tokens(server: RunningServer, admin: httpx.Client) -> None:
    create_user(admin, "gone", "gone-password-1")
    token = _login(server, "gone", "gone-password-1").json()["token"]
    assert admin.delete("/apis/management.llmos.ai/v1/users/gone").status_code == 200
    with server.client(token) as client:
        assert client.get("/v1-auth/me").status_code == 401
    tokens = admin.get(
        "/apis/management.llmos.ai/v1/tokens", params={"labelSelector": "llmos.ai/user=gone"}
    ).json()["items"]
    assert tokens == []


def test_brute_force_is_locked_out(fresh_server: RunningServer) -> None:
    fresh_server.setup_admin()
    codes = [_login(fresh_server, "admin", f"wrong-{i}").status_code for i in range(5)]
    assert codes == [401] * 5
    locked = _login(fresh_server, "admin", ADMIN_PASSWORD)
    assert locked.status_code == 429
    assert int(locked.headers["retry-after"]) >= 1
    assert "too many failed logins" in locked.json()["message"]
    # Another account is not locked by these failures.
    assert _login(fresh_server, "nobody", "x").status_code == 401
