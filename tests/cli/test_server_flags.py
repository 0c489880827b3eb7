"""``llmos server``'s flags, generated from ServerConfig: yes-or-no ones take --no-... too."""

from __future__ import annotations

from typing import Any

import pytest
from typer.testing import CliRunner

from llmos.cli import server as server_cli
from llmos.cli.main import app


@pytest.mark.parametrize(
    ("args", "wanted"),
    [
        ([], None),  # not given: the config file or the environment decides
        (["--serve-bundled-model"], True),
        (["--no-serve-bundled-model"], False),
    ],
)
def test_a_yes_or_no_flag_can_be_turned_off(
    monkeypatch: pytest.MonkeyPatch, args: list[str], wanted: bool | None
) -> None:
    given: dict[str, Any] = {}
    monkeypatch.setattr(server_cli, "_run", lambda **flags: given.update(flags))
    result = CliRunner().invoke(app, ["server", *args, "--port", "9999"])
    assert result.exit_code == 0, result.output
    assert given["serve_bundled_model"] is wanted
    assert given["port"] == 9999
