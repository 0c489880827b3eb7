"""``LLMOS_BOOTSTRAP_PASSWORD``: the admin's first password given, as the installer's Deployment does.

Every replica of a cluster reads it from the Secret ``llmos-bootstrap``, so they
agree on one admin; it is neither written to the data dir nor logged.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from cli.runner import assert_fails, run_cli
from server import start_server

PASSWORD = "given-bootstrap-password"


def test_the_given_password_makes_the_admin(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LLMOS_BOOTSTRAP_PASSWORD", PASSWORD)
    running = start_server(tmp_path / "data")
    try:
        with running.client() as client:
            response = client.post(
                "/v1-public/auth/login", json={"username": "admin", "password": PASSWORD}
            )
        assert response.status_code == 200, response.text
        assert response.json()["mustChangePassword"] is True
        assert not (tmp_path / "data" / "bootstrap-password").exists()
    finally:
        running.stop()
    assert PASSWORD not in running.log()


def test_a_short_bootstrap_password_is_refused(tmp_path: Path) -> None:
    result = run_cli(
        tmp_path / "home",
        "server", "--data-dir", str(tmp_path / "d"), "--skip-preflight",
        env={"LLMOS_BOOTSTRAP_PASSWORD": "short"},
    )  # fmt: skip
    assert_fails(result, 2, "bootstrap_password", "at least 12")
