"""The ``llmos`` CLI as a user runs it: subprocesses against a real server, no terminal."""

from __future__ import annotations

import hashlib
import json
import os
import re
import stat
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
import yaml
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from server import ADMIN_PASSWORD, RunningServer

from .runner import CLI, assert_fails, run_in_terminal

# Every step is a new `llmos` process (about a second each), so this is the slow end.
pytestmark = pytest.mark.slow


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def _fingerprint(pem_file: str) -> str:
    cert = x509.load_pem_x509_certificate(Path(pem_file).read_bytes())
    digest = hashlib.sha256(cert.public_bytes(Encoding.DER)).hexdigest().upper()
    return ":".join(digest[i : i + 2] for i in range(0, len(digest), 2))


def _manifest(path: Path, namespace: str, name: str, replicas: int) -> Path:
    docs = [
        {
            "apiVersion": "management.llmos.ai/v1",
            "kind": "Namespace",
            "metadata": {"name": namespace},
        },
        {
            "apiVersion": "ml.llmos.ai/v1",
            "kind": "ModelService",
            "metadata": {"name": name, "namespace": namespace},
            # An external endpoint that is not there: the controller runs no
            # engine for it, so replicas is just a field these tests change.
            "spec": {
                "model": "bundled:smollm2",
                "replicas": replicas,
                "endpoint": "http://127.0.0.1:9",
            },
        },
    ]
    path.write_text(yaml.safe_dump_all(docs, sort_keys=False))
    return path


def _replicas(cli: CLI, namespace: str, name: str) -> int:
    result = cli("get", "ms", name, "-n", namespace, "-o", "json")
    assert result.code == 0, result
    return int(json.loads(result.stdout)["spec"]["replicas"])


# -- login, whoami, logout -----------------------------------------------------------------


def test_first_login_saves_private_credentials_and_the_ca(
    cli: CLI, fresh_server: RunningServer
) -> None:
    result = cli(
        "login",
        fresh_server.url,
        "--password-stdin",
        "--yes",
        "--new-password",
        ADMIN_PASSWORD,
        stdin=fresh_server.bootstrap_password() + "\n",
    )
    assert result.code == 0, result
    assert _fingerprint(fresh_server.ca) in result.stderr
    assert f"First login done: the server URL is {fresh_server.url}." in result.stderr
    assert f"Logged in to {fresh_server.url} as admin." in result.stderr

    assert _mode(cli.credentials_path) == 0o600
    assert _mode(cli.ca_path) == 0o600
    assert cli.ca_path.read_text() == Path(fresh_server.ca).read_text()
    saved = cli.credentials()
    assert saved["server"] == fresh_server.url and saved["user"] == "admin"

    whoami = cli("whoami")
    assert (whoami.code, whoami.stdout) == (0, "admin (roles: admin)\n")
    # The one-time password is spent; the new one works.
    assert fresh_server.login("admin", ADMIN_PASSWORD)


def test_login_with_ca_cert_and_a_wrong_password(
    cli: CLI, server: RunningServer, fresh_server: RunningServer
) -> None:
    ok = cli.login(server)
    assert ok.code == 0, ok
    assert "fingerprint" not in ok.stderr  # --ca-cert: nothing to confirm
    assert cli("whoami").stdout == "admin (roles: admin)\n"

    wrong = cli.login(fresh_server, password="not-the-password")
    assert_fails(wrong, 1, "wrong user name or password")
    assert wrong.stderr.startswith("error: ")
    # The failed login left the working session, and the CA it trusts, alone.
    assert cli.ca_path.read_text() == Path(server.ca).read_text()
    assert cli.credentials()["server"] == server.url
    assert cli("whoami").code == 0


def test_login_without_a_terminal_refuses_to_trust_an_unknown_ca(
    cli: CLI, server: RunningServer
) -> None:
    result = cli("login", server.url, "--password-stdin", stdin=ADMIN_PASSWORD + "\n")
    assert_fails(result, 1, "no terminal", "--ca-cert", "--yes")
    assert _fingerprint(server.ca) in result.stderr
    assert not cli.credentials_path.exists() and not cli.ca_path.exists()


def test_login_again_trusts_the_saved_ca_without_asking(
    cli: CLI, server: RunningServer, fresh_server: RunningServer
) -> None:
    assert cli.login(server).code == 0
    # No --ca-cert, no --yes and no terminal: the CA saved by the first login verifies it.
    again = cli("login", server.url, "--password-stdin", stdin=ADMIN_PASSWORD + "\n")
    assert again.code == 0, again
    assert "fingerprint" not in again.stderr
    assert cli("whoami").stdout == "admin (roles: admin)\n"

    # Another server, another CA: the saved one does not verify it, so it is asked about.
    other = cli(
        "login", fresh_server.url, "--password-stdin", stdin=fresh_server.bootstrap_password()
    )
    assert_fails(other, 1, "no terminal", "--ca-cert", "--yes")
    assert _fingerprint(fresh_server.ca) in other.stderr
    assert cli.ca_path.read_text() == Path(server.ca).read_text()


def test_the_trust_prompt_shows_the_fingerprint_plainly_on_one_line(
    cli: CLI, server: RunningServer
) -> None:
    code, shown = run_in_terminal(
        cli.config_home, "login", server.url, prompt="Trust it?", answer="n", columns=80
    )
    assert code == 1, shown
    # Verbatim: no colour codes inside "SHA-256" or the fingerprint, no line break in it.
    assert "the SHA-256 fingerprint:" in shown
    assert f"  {_fingerprint(server.ca)}\r\n" in shown
    assert "not trusted: nothing was saved" in shown
    assert not cli.ca_path.exists()


def test_logout_revokes_the_token_and_forgets_it(logged_in: CLI, server: RunningServer) -> None:
    token = logged_in.credentials()["token"]
    result = logged_in("logout")
    assert result.code == 0, result
    assert f"Logged out of {server.url}." in result.stderr
    assert not logged_in.credentials_path.exists()
    with server.client(token) as client:
        assert client.get("/v1-auth/me").status_code == 401
    assert_fails(logged_in("whoami"), 1, "not logged in", "llmos login")


# -- apply, get, describe, delete, edit ----------------------------------------------------


def test_apply_get_describe_delete(logged_in: CLI, tmp_path: Path) -> None:
    ns = "cli-apply"
    manifest = _manifest(tmp_path / "chat.yaml", ns, "chat", replicas=1)
    cli = logged_in
    created = cli("apply", "-f", str(manifest))
    assert (created.code, created.stdout) == (
        0,
        "namespace/cli-apply created\nmodelservice/chat created\n",
    )
    again = cli("apply", "-f", str(manifest))
    assert again.stdout == "namespace/cli-apply unchanged\nmodelservice/chat unchanged\n"
    _manifest(manifest, ns, "chat", replicas=2)
    changed = cli("apply", "-f", str(manifest))
    assert changed.stdout == "namespace/cli-apply unchanged\nmodelservice/chat configured\n"

    # A listing is a List, even of one object; a named object is the object.
    listed = json.loads(cli("get", "ms", "-n", ns, "-o", "json").stdout)
    assert listed["kind"] == "List" and len(listed["items"]) == 1
    item = listed["items"][0]
    assert item["metadata"]["name"] == "chat" and item["spec"]["replicas"] == 2
    assert item["spec"]["model"] == "bundled:smollm2"
    as_yaml = yaml.safe_load(cli("get", "ms", "chat", "-n", ns, "-o", "yaml").stdout)
    assert as_yaml["kind"] == "ModelService" and as_yaml["spec"]["replicas"] == 2

    table = cli("get", "ms", "-A").stdout.splitlines()
    assert table[0].split()[:3] == ["NAMESPACE", "NAME", "MODEL"]
    row = next(r.split() for r in table if r.startswith(f"{ns} "))
    assert row[:3] == [ns, "chat", "bundled:smollm2"] and row[4] == "0/2"
    assert row[3] in ("auto", "external")  # the endpoint's engine, once reconciled
    one = cli("get", "modelservice/chat", "-n", ns).stdout.splitlines()
    assert one[0].split()[:2] == ["NAME", "MODEL"] and one[1].split()[0] == "chat"

    described = cli("describe", "ms", "chat", "-n", ns)
    assert described.code == 0, described
    text = described.stdout
    assert "Name:         chat" in text and f"Namespace:    {ns}" in text
    assert "Kind:         ModelService (ml.llmos.ai/v1)" in text
    assert "Spec:" in text and "  replicas: 2" in text and "Events" in text

    scaled = cli("scale", "ms", "chat", "--replicas", "0", "-n", ns)
    assert (scaled.code, scaled.stdout) == (0, "modelservice/chat scaled to 0 replicas\n")
    assert (
        json.loads(cli("get", "ms", "chat", "-n", ns, "-o", "json").stdout)["spec"]["replicas"] == 0
    )
    assert_fails(cli("scale", "ms", "chat", "--replicas", "-1", "-n", ns), 1, "spec.replicas")
    assert_fails(cli("scale", "ms", "chat", "-n", ns), 2, "--replicas N")
    assert_fails(cli("scale", "ns", ns, "--replicas", "2"), 2, "only ModelServices")
    assert_fails(cli("scale", "ms", "nope", "--replicas", "1", "-n", ns), 1, "not found")

    deleted = cli("delete", "ms", "chat", "-n", ns)
    assert (deleted.code, deleted.stdout) == (0, "modelservice/chat deleted\n")
    assert_fails(cli("get", "ms", "chat", "-n", ns), 1, "not found")
    empty = cli("get", "ms", "-n", ns)
    assert (empty.code, " ".join(empty.stdout.split())) == (
        0,
        f"No ModelService objects found in namespace {ns} (add -A for every namespace).",
    )
    assert cli("get", "gr", "admin", "-o", "name").stdout == "globalrole/admin\n"


def test_edit_saves_a_change_and_cancels_an_unchanged_file(logged_in: CLI, tmp_path: Path) -> None:
    ns = "cli-edit"
    assert logged_in("apply", "-f", str(_manifest(tmp_path / "m.yaml", ns, "chat", 1))).code == 0
    editor = tmp_path / "editor.sh"
    editor.write_text("#!/bin/sh\nsed -i 's/^  replicas: 1$/  replicas: 4/' \"$1\"\n")
    editor.chmod(0o755)

    edited = logged_in("edit", "ms", "chat", "-n", ns, env={"EDITOR": str(editor)})
    assert (edited.code, edited.stdout) == (0, "modelservice/chat edited\n")
    assert _replicas(logged_in, ns, "chat") == 4

    # An EDITOR with arguments is split like a shell would split it.
    quoted = "sed -i 's/^  replicas: 4$/  replicas: 5/'"
    assert logged_in("edit", "ms/chat", "-n", ns, env={"EDITOR": quoted}).code == 0
    assert _replicas(logged_in, ns, "chat") == 5

    cancelled = logged_in("edit", "ms", "chat", "-n", ns, env={"EDITOR": "true"})
    assert cancelled.code == 0, cancelled
    assert "Edit cancelled" in cancelled.stderr and cancelled.stdout == ""
    assert _replicas(logged_in, ns, "chat") == 5


def test_a_name_in_another_namespace_says_which(
    logged_in: CLI, admin: httpx.Client, server: RunningServer, tmp_path: Path
) -> None:
    """As the bundled demo model: kubectl's default namespace, and a hint where it is."""
    ms = {
        "apiVersion": "ml.llmos.ai/v1",
        "kind": "ModelService",
        "metadata": {"name": "public-demo"},
        "spec": {"model": "bundled:smollm2", "endpoint": "http://127.0.0.1:9"},
    }
    public = "/apis/ml.llmos.ai/v1/namespaces/llmos-public/modelservices"
    assert admin.post(public, json=ms).status_code == 201
    try:
        missing = "ModelService 'public-demo' not found in namespace 'default'"
        hint = "it exists in namespace 'llmos-public': add -n llmos-public"
        for args in (
            ("get", "ms", "public-demo"),
            ("describe", "ms", "public-demo"),
            ("logs", "ms/public-demo"),
            ("edit", "ms", "public-demo"),
            ("delete", "ms", "public-demo"),
        ):
            assert_fails(logged_in(*args, env={"EDITOR": "true"}), 1, f"{missing}; {hint}")
        # A user who may not read the default namespace at all is told the same.
        password = "carol-password-123"
        assert logged_in("users", "create", "carol", "--password", password).code == 0
        carol = CLI(tmp_path / "carol")
        assert carol.login(server, "-u", "carol", password=password).code == 0
        assert_fails(carol("describe", "ms", "public-demo"), 1, "may not get", hint)
        assert carol("describe", "ms", "public-demo", "-n", "llmos-public").code == 0

        # A namespace given with -n is looked past alike; a name no namespace has is not.
        elsewhere = logged_in("get", "ms", "public-demo", "-n", "cli-nowhere")
        assert_fails(elsewhere, 1, "not found in namespace 'cli-nowhere'", hint)
        nowhere = assert_fails(logged_in("get", "ms", "no-such-ms"), 1, "not found")
        assert "exists in" not in nowhere

        # Several namespaces hold it: all are named.
        _manifest(tmp_path / "m.yaml", "cli-second", "public-demo", replicas=0)
        assert logged_in("apply", "-f", str(tmp_path / "m.yaml")).code == 0
        several = "it exists in namespaces 'cli-second', 'llmos-public': add -n with one of them"
        assert_fails(logged_in("describe", "ms", "public-demo"), 1, several)
    finally:
        admin.delete(f"{public}/public-demo")
        admin.delete("/apis/management.llmos.ai/v1/users/carol")


def test_get_nodes_shows_memory_for_people(logged_in: CLI) -> None:
    table = logged_in("get", "nodes").stdout.splitlines()
    assert table[0].split()[:4] == ["NAME", "STATUS", "CPU", "MEMORY"], table
    memory = table[1].split()[3]
    assert re.fullmatch(r"[0-9]+\.[0-9](Ti|Gi|Mi)", memory), table


# -- run, chat, logs -----------------------------------------------------------------------


def test_chat_with_an_unknown_model_points_to_the_cli(logged_in: CLI) -> None:
    result = logged_in("chat", "no-such-model", "-m", "Hi")
    error = assert_fails(result, 1, "'no-such-model' does not exist", "`llmos get ms -A`")
    assert "/v1/models" not in error


# -- users and API keys --------------------------------------------------------------------


def _users(cli: CLI) -> dict[str, dict[str, object]]:
    result = cli("users", "list", "-o", "json")
    assert result.code == 0, result
    return {u["metadata"]["name"]: u["spec"] for u in json.loads(result.stdout)["items"]}


def test_users_lifecycle(logged_in: CLI, server: RunningServer, tmp_path: Path) -> None:
    password = "bob-password-123"
    created = logged_in("users", "create", "bob", "--password", password)
    assert (created.code, created.stdout) == (0, "user/bob created\n")
    users = _users(logged_in)
    assert users["bob"]["globalRoles"] == ["user"] and users["bob"]["active"] is True
    assert password not in logged_in("users", "list", "-o", "yaml").stdout

    bob = CLI(tmp_path / "bob")
    assert logged_in("users", "disable", "bob").stdout == "user/bob disabled\n"
    assert _users(logged_in)["bob"]["active"] is False
    assert_fails(bob.login(server, "-u", "bob", password=password), 1, "disabled")
    assert logged_in("users", "enable", "bob").stdout == "user/bob enabled\n"
    assert bob.login(server, "-u", "bob", password=password).code == 0
    assert bob("whoami").stdout == "bob (roles: user)\n"

    assert logged_in("users", "delete", "bob").stdout == "user/bob deleted\n"
    assert "bob" not in _users(logged_in)
    assert_fails(bob("whoami"), 1, "llmos login")


def test_api_key_is_shown_once_works_and_can_be_revoked(
    logged_in: CLI, server: RunningServer
) -> None:
    created = logged_in("apikeys", "create", "-d", "cli test")
    assert created.code == 0, created
    key = created.stdout.strip()
    assert created.stdout == key + "\n"  # only the key on stdout, for `KEY=$(llmos …)`
    name, secret = key.split(".", 1)
    assert f"API key {name} created" in created.stderr and "only this once" in created.stderr

    table = logged_in("apikeys", "list")
    assert name in table.stdout and "cli test" in table.stdout
    listed = json.loads(logged_in("apikeys", "list", "-o", "json").stdout)["items"]
    assert [k["description"] for k in listed if k["name"] == name] == ["cli test"]
    assert f"apikey/{name}\n" in logged_in("apikeys", "list", "-o", "name").stdout
    for shown in (table.stdout, json.dumps(listed)):
        assert secret not in shown

    with server.client(key) as client:
        me = client.get("/v1-auth/me")
        assert me.status_code == 200 and me.json()["token"]["type"] == "apikey"
    revoked = logged_in("apikeys", "revoke", name)
    assert (revoked.code, revoked.stdout) == (0, f"API key {name} revoked\n")
    with server.client(key) as client:
        assert client.get("/v1-auth/me").status_code == 401


def test_api_key_limits_are_set_and_shown(logged_in: CLI) -> None:
    created = logged_in("apikeys", "create", "-d", "limited", "--rpm", "60", "--tpm", "10000")
    assert created.code == 0, created
    name = created.stdout.strip().split(".", 1)[0]
    row = next(r for r in logged_in("apikeys", "list").stdout.splitlines() if name in r)
    assert "60 req/min, 10000 tok/min" in row
    listed = json.loads(logged_in("apikeys", "list", "-o", "json").stdout)["items"]
    [key] = [k for k in listed if k["name"] == name]
    assert (key["requestsPerMinute"], key["tokensPerMinute"]) == (60, 10000)
    unlimited = logged_in("apikeys", "create", "-d", "open")
    open_name = unlimited.stdout.strip().split(".", 1)[0]
    open_row = next(r for r in logged_in("apikeys", "list").stdout.splitlines() if open_name in r)
    assert "none" in open_row.split()
    # Zero is refused, not taken for "no limit" or "never expires".
    assert_fails(logged_in("apikeys", "create", "--rpm", "0"), 1, "requestsPerMinute")
    assert_fails(logged_in("apikeys", "create", "--ttl-minutes", "0"), 1, "ttlMinutes")
    for made in (name, open_name):
        logged_in("apikeys", "revoke", made)


# -- error UX ------------------------------------------------------------------------------


def test_usage_errors_are_one_plain_line(logged_in: CLI, cli: CLI, tmp_path: Path) -> None:
    assert_fails(logged_in("get", "gizmos"), 1, "unknown kind 'gizmos'", "modelservices")
    # What the user typed comes back verbatim: no Rich markup, no ":cd:" emoji.
    assert_fails(logged_in("get", "a:cd:[bold]b"), 1, "unknown kind 'a:cd:[bold]b'")
    assert_fails(logged_in("get", "ms", "-o", "xml"), 2, "unknown output format 'xml'")
    # One invalid field is said once; several are each listed under the first.
    bad_name = logged_in("run", "bundled:smollm2", "--name", "Bad_Name", "--no-wait")
    assert_fails(bad_name, 1, "metadata.name 'Bad_Name' contains upper-case letters")
    assert bad_name.stderr.count("upper-case") == 1, bad_name.stderr
    manifest = tmp_path / "two-wrongs.yaml"
    manifest.write_text(
        "kind: ModelService\napiVersion: ml.llmos.ai/v1\nmetadata: {name: wrongs}\n"
        "spec: {model: bundled:smollm2, replicas: -1, resources: {memory: 12XB}}\n"
    )
    two = logged_in("apply", "-f", str(manifest))
    assert_fails(two, 1, "spec.replicas")
    assert "  - spec.replicas" in two.stderr and "  - spec.resources.memory" in two.stderr
    assert_fails(logged_in("apply", "-f", str(tmp_path / "missing.yaml")), 2, "cannot read")
    stranger = CLI(tmp_path / "stranger")
    assert_fails(stranger("get", "ms"), 1, "not logged in", "llmos login")


def test_a_stopped_server_cannot_be_reached(cli: CLI, fresh_server: RunningServer) -> None:
    assert cli.first_login(fresh_server).code == 0
    assert fresh_server.stop() == 0
    for args in (("whoami",), ("get", "ms")):
        assert_fails(cli(*args), 1, f"cannot reach {fresh_server.url}", "Is the server running?")


def test_long_error_lines_are_not_wrapped_when_piped(cli: CLI) -> None:
    result = cli("login", "https://127.0.0.1:1", "--ca-cert", "/nonexistent/" + "d" * 120)
    assert_fails(result, 2, "d" * 120 + ": no such file")


# -- shell completion ----------------------------------------------------------------------


def test_completion_script_for_a_named_shell(cli: CLI) -> None:
    bash = cli("completion", "bash")
    assert bash.code == 0, bash
    assert "_LLMOS_COMPLETE=complete_bash" in bash.stdout
    assert "complete -o default -F _llmos_completion llmos" in bash.stdout
    zsh = cli("completion", "zsh")
    assert zsh.stdout.startswith("#compdef llmos")
    assert cli("completion", "tcsh").code == 2


def test_show_completion_detects_the_shell(cli: CLI) -> None:
    # Typer's flag detects the shell from the parent process; bash is made the parent
    # (the trailing `exit` stops bash from exec-ing python in its own place).
    wrapper = ["bash", "-c", '"$@"; exit $?', "bash"]
    proc = subprocess.run(
        [*wrapper, sys.executable, "-m", "llmos", "--show-completion"],
        capture_output=True,
        text=True,
        env={**os.environ, "XDG_CONFIG_HOME": str(cli.config_home)},
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    assert "complete -o default -F _llmos_completion llmos" in proc.stdout


def test_bash_completion_completes_commands(cli: CLI, tmp_path: Path) -> None:
    """Source the script in bash and ask it to complete, as bash does on <TAB>."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    shim = bin_dir / "llmos"
    shim.write_text(f'#!/bin/sh\nexec "{sys.executable}" -m llmos "$@"\n')
    shim.chmod(0o755)
    script = cli("completion", "bash").stdout

    def complete(*words: str) -> list[str]:
        line = " ".join(words)
        program = (
            f"{script}\nCOMP_WORDS=({line}); COMP_CWORD={len(words) - 1}\n"
            '_llmos_completion llmos; printf "%s\\n" "${COMPREPLY[@]}"\n'
        )
        env = {**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}"}
        proc = subprocess.run(
            ["bash", "-c", program], capture_output=True, text=True, env=env, timeout=60
        )
        assert proc.returncode == 0, proc.stderr
        return proc.stdout.split()

    assert complete("llmos", "ge") == ["get"]
    assert complete("llmos", "users", "di") == ["disable"]
    assert {"login", "logout"} <= set(complete("llmos", "lo"))
    assert complete("llmos", "get", "model") == ["modelservices"]
    assert complete("llmos", "describe", "gr") == ["gr"]  # globalroles' short name
    assert {"roletemplatebindings", "roletemplates", "rt", "rtb"} == set(
        complete("llmos", "delete", "r")
    )
