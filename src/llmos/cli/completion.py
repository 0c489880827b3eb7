"""``llmos completion SHELL``: print the shell completion script for a shell you name.

Typer's ``--show-completion`` guesses the shell from the parent process and
ignores a shell given after it; this command is the explicit, scriptable form
(``source <(llmos completion bash)``). The script calls back into ``llmos``
through Typer's ``_LLMOS_COMPLETE`` protocol.
"""

from __future__ import annotations

from typing import Annotated

import typer

# Typer has no public API for the script itself; --show-completion uses this one too
# (typer is pinned in pyproject.toml, and tests/cli/test_cli.py runs the script).
from typer._completion_shared import Shells, get_completion_script

PROG_NAME = "llmos"


def register(app: typer.Typer) -> None:
    @app.command()
    def completion(
        shell: Annotated[Shells, typer.Argument(metavar="SHELL", help="The shell to complete in.")],
    ) -> None:
        """Print the shell completion script for SHELL.

        For example: source <(llmos completion bash)
        """
        complete_var = f"_{PROG_NAME.upper()}_COMPLETE"
        script = get_completion_script(
            prog_name=PROG_NAME, complete_var=complete_var, shell=shell.value
        )
        typer.echo(script)


def complete_kind(incomplete: str) -> list[str]:
    """Kinds for a shell to offer: plurals and short names, from this CLI's own table
    (a server of the same release serves the same kinds)."""
    from llmos.resources.registry import ALL_KINDS  # only when a shell asks

    words = sorted({w for info in ALL_KINDS for w in (info.plural, *info.short_names)})
    return [word for word in words if word.startswith(incomplete.lower())]
