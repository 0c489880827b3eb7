"""What a newcomer meets following the README: each as a fresh-clone pass found it."""

from __future__ import annotations

import socket
import uuid
from pathlib import Path

import pytest
import yaml

from server import RunningServer

from .runner import CLI, assert_fails, run_in_terminal

pytestmark = pytest.mark.slow


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_a_server_that_is_gone_is_an_error_line_for_chat_too(
    logged_in: CLI, tmp_path: Path
) -> None:
    creds = logged_in.credentials()
    creds["server"] = f"https://127.0.0.1:{_free_port()}"  # nothing listens there
    logged_in.credentials_path.write_text(yaml.safe_dump(creds))
    for args in (("chat", "smollm2", "-m", "hi"), ("get", "ms"), ("logs", "ms/x")):
        assert_fails(
            logged_in(*args), 1, "cannot reach https://127.0.0.1:", "Is the server running?"
        )


def test_damaged_credentials_are_as_good_as_none(logged_in: CLI) -> None:
    logged_in.credentials_path.write_text("not: [valid")
    assert_fails(logged_in("get", "ms"), 1, "not logged in: run `llmos login")


def test_a_revoked_login_says_to_log_in_again_and_logout_still_succeeds(
    logged_in: CLI, server: RunningServer
) -> None:
    token = logged_in.credentials()["token"]
    with server.client(token) as client:
        assert client.post("/v1-auth/logout").status_code == 200
    assert_fails(
        logged_in("get", "ms"),
        1,
        "your login is no longer valid",
        f"run `llmos login {server.url}`",
    )
    result = logged_in("logout")
    assert result.code == 0, result
    assert "Logged out" in result.stderr and "its session had ended already" in result.stderr
    assert not logged_in.credentials_path.exists()


def test_an_admin_grants_and_revokes_a_namespace_role(
    logged_in: CLI, server: RunningServer, tmp_path: Path
) -> None:
    user, password = f"gr-{uuid.uuid4().hex[:5]}", "granted-password-1"
    assert logged_in("users", "create", user, "--password", password).code == 0
    theirs = CLI(tmp_path / "theirs")
    assert theirs.login(server, "-u", user, password=password).code == 0
    denied = assert_fails(theirs("run", "bundled:smollm2", "--name", "mine", "--no-wait"), 1)
    assert f"an admin can give a role there: `llmos users grant {user} default`" in denied

    granted = logged_in("users", "grant", user, "default")
    assert granted.code == 0, granted
    assert granted.stdout == f"user/{user} is namespace-member in namespace default\n"
    assert_fails(logged_in("users", "grant", user, "default"), 1, "already")
    ran = theirs("run", "bundled:smollm2", "--name", f"{user}-ms", "--replicas", "0", "--no-wait")
    assert ran.code == 0, ran
    assert theirs("delete", "ms", f"{user}-ms").code == 0

    revoked = logged_in("users", "revoke", user, "default")
    assert revoked.stdout == f"user/{user} is no longer namespace-member in default\n"
    assert_fails(theirs("get", "ms"), 1, f"user {user!r} may not list modelservices")
    assert_fails(logged_in("users", "revoke", user, "default"), 1, "holds no role")
    assert logged_in("users", "delete", user).code == 0


def test_an_unknown_kind_suggests_the_close_one_and_lists_short_names(logged_in: CLI) -> None:
    error = assert_fails(logged_in("get", "gpus"), 1, "unknown kind 'gpus': did you mean 'gpu'?")
    assert "modelservices (ms)" in error and "roletemplatebindings (rtb)" in error


def test_run_sends_a_relative_path_as_the_absolute_one_even_when_missing(
    logged_in: CLI, tmp_path: Path
) -> None:
    """The server then says which file it did not find, not that the path is relative."""
    result = logged_in("run", "./nothere.gguf", "--name", "nothere", "--no-wait", cwd=tmp_path)
    assert result.code == 0, result
    shown = yaml.safe_load(logged_in("get", "ms", "nothere", "-o", "yaml").stdout)
    assert shown["spec"]["model"] == str(tmp_path / "nothere.gguf")
    assert logged_in("delete", "ms", "nothere").code == 0


def _must_change_password(server: RunningServer, prefix: str) -> str:
    """A new user whose password is first-password-12 until they choose their own."""
    user = f"{prefix}-{uuid.uuid4().hex[:5]}"
    body = {
        "metadata": {"name": user},
        "spec": {"password": "first-password-12", "mustChangePassword": True},
    }
    with server.admin_client() as admin:
        assert admin.post("/apis/management.llmos.ai/v1/users", json=body).status_code == 201
    return user


def test_a_refused_new_password_leaves_no_session_behind(
    logged_in: CLI, server: RunningServer, tmp_path: Path
) -> None:
    user = _must_change_password(server, "np")
    with server.admin_client() as admin:
        theirs = CLI(tmp_path / "theirs")
        short = theirs.login(
            server, "-u", user, "--new-password", "short", password="first-password-12"
        )
        assert_fails(short, 1, "the new password must be at least")
        assert not theirs.credentials_path.exists()
        tokens = admin.get("/apis/management.llmos.ai/v1/tokens").json()["items"]
        assert [t for t in tokens if t["spec"]["userName"] == user] == []  # none left live
        assert admin.delete(f"/apis/management.llmos.ai/v1/users/{user}").status_code == 200


def test_a_new_password_refused_at_the_prompt_is_asked_for_again(
    server: RunningServer, tmp_path: Path
) -> None:
    user = _must_change_password(server, "re")
    theirs = CLI(tmp_path / "theirs")
    code, shown = run_in_terminal(
        theirs.config_home,
        "login",
        server.url,
        "-u",
        user,
        "--ca-cert",
        server.ca,
        columns=200,
        # Each hidden prompt's last ": " comes once the terminal has stopped echoing and
        # dropped what was typed ahead (getpass), so each answer waits for it.
        dialogue=[
            ("Password: ", "first-password-12"),
            ("Choose a new password: ", "short"),
            ("Repeat for confirmation: ", "short"),
            ("Choose a new password: ", "second-password-12"),
            ("Repeat for confirmation: ", "second-password-12"),
        ],
    )
    assert code == 0, shown
    assert "the new password must be at least" in shown and "choose another" in shown
    assert theirs.credentials()["user"] == user
    assert theirs.login(server, "-u", user, password="second-password-12").code == 0
