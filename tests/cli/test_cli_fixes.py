"""CLI behaviour a docs-vs-behaviour pass found wrong: each as a user meets it."""

from __future__ import annotations

import time
import uuid
from pathlib import Path

import pytest
import yaml

from server import RunningServer

from .runner import CLI, assert_fails

pytestmark = pytest.mark.slow


def _apply(cli: CLI, tmp_path: Path, *docs: dict[str, object]) -> None:
    path = tmp_path / f"{uuid.uuid4().hex[:6]}.yaml"
    path.write_text(yaml.safe_dump_all(docs, sort_keys=False))
    result = cli("apply", "-f", str(path))
    assert result.code == 0, result


def _endpoint_ms(name: str, **spec: object) -> dict[str, object]:
    """A ModelService for a server that is not there: no engine runs for it."""
    return {
        "apiVersion": "ml.llmos.ai/v1",
        "kind": "ModelService",
        "metadata": {"name": name},
        "spec": {"model": "x", "endpoint": "http://127.0.0.1:9", **spec},
    }


def test_a_user_applies_a_namespace_it_may_create_but_not_read(
    logged_in: CLI, server: RunningServer, tmp_path: Path
) -> None:
    user, password = f"ns-{uuid.uuid4().hex[:5]}", "applier-password-1"
    assert logged_in("users", "create", user, "--password", password).code == 0
    them = CLI(tmp_path / user)
    assert them.login(server, "-u", user, password=password).code == 0
    namespace = {"apiVersion": "management.llmos.ai/v1", "kind": "Namespace"}
    path = tmp_path / "ns.yaml"
    path.write_text(yaml.safe_dump({**namespace, "metadata": {"name": f"{user}-own"}}))
    made = them("apply", "-f", str(path))
    assert (made.code, made.stdout) == (0, f"namespace/{user}-own created\n"), made
    assert them("get", "ms", "-n", f"{user}-own").code == 0  # it owns it now
    taken = tmp_path / "taken.yaml"
    taken.write_text(yaml.safe_dump({**namespace, "metadata": {"name": "default"}}))
    assert_fails(them("apply", "-f", str(taken)), 1, "may not get namespaces 'default'")
    assert logged_in("delete", "namespace", f"{user}-own").code == 0


def test_delete_goes_on_past_a_missing_name_and_fails_at_the_end(
    logged_in: CLI, tmp_path: Path
) -> None:
    _apply(logged_in, tmp_path, _endpoint_ms("first"), _endpoint_ms("second"))
    result = logged_in("delete", "ms", "first", "nope", "second")
    assert result.stdout == "modelservice/first deleted\nmodelservice/second deleted\n"
    assert_fails(result, 1, "'nope' not found")


def test_delete_that_outwaits_its_timeout_says_what_holds_it(
    logged_in: CLI, tmp_path: Path
) -> None:
    volume = {"apiVersion": "ml.llmos.ai/v1", "kind": "Volume", "metadata": {"name": "held"}}
    _apply(logged_in, tmp_path, volume, _endpoint_ms("holder", volumes=[{"name": "held"}]))
    result = logged_in("delete", "vol", "held", "--timeout", "2")
    assert_fails(result, 1, "volume/held is still there after 2 s: in use by ModelService/holder")
    assert logged_in("delete", "ms", "holder").code == 0
    deadline = time.monotonic() + 30  # its deletion goes on by itself once nothing holds it
    while logged_in("get", "vol", "held").code == 0:
        assert time.monotonic() < deadline, "the volume stayed"


def test_run_takes_a_relative_path_from_where_the_user_is(logged_in: CLI, tmp_path: Path) -> None:
    (tmp_path / "models").mkdir()
    (tmp_path / "models" / "mine.gguf").write_bytes(b"not really a model")
    models = tmp_path / "models"
    result = logged_in("run", "./mine.gguf", "--name", "relative", "--no-wait", cwd=models)
    assert result.code == 0, result
    shown = yaml.safe_load(logged_in("get", "ms", "relative", "-o", "yaml").stdout)
    assert shown["spec"]["model"] == str(tmp_path / "models" / "mine.gguf")
    assert shown["spec"]["modelRegistry"] == "local"
    assert logged_in("delete", "ms", "relative").code == 0


def test_get_shows_the_names_found_and_says_which_are_not(logged_in: CLI, tmp_path: Path) -> None:
    _apply(logged_in, tmp_path, _endpoint_ms("found"))
    result = logged_in("get", "ms", "found", "absent", "-o", "name")
    assert result.stdout == "modelservice/found\n"
    assert_fails(result, 1, "'absent' not found")
    assert logged_in("delete", "ms", "found").code == 0
