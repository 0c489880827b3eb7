"""The `llmos` command: the entry point that assembles every sub-command.

Each sub-command lives in its own module under ``llmos.cli`` and registers
itself on the Typer app here. Client commands talk to the API over HTTPS like
any other client; only ``llmos server`` runs the server in-process.
"""

from __future__ import annotations

from typing import Annotated

import typer

from llmos.cli import (
    completion,
    install,
    login,
    preflight,
    rayjobs,
    resources,
    server,
    serving,
    users,
)

app = typer.Typer(
    name="llmos",
    help="LLMOS: run LLMs and AI workloads on your own GPU machines.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=True,
    # Click's plain help: wrapped, never cut; Rich's panels cut long flags and help at 80
    # columns (`--max-request-by…`). Errors stay one plain line either way.
    rich_markup_mode=None,
)


def _version(value: bool) -> None:
    if value:
        from llmos import __version__

        typer.echo(f"llmos {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Show the version.")
    ] = False,
) -> None:
    """LLMOS: run LLMs and AI workloads on your own GPU machines."""


server.register(app)
login.register(app)
resources.register(app)
serving.register(app)
users.register(app)
preflight.register(app)
install.register(app)
rayjobs.register(app)
completion.register(app)


def main() -> None:
    """Console-script entry point (also ``python -m llmos``).

    The program name is fixed so that usage lines and completion scripts name
    ``llmos`` even when run as ``python -m llmos``.
    """
    app(prog_name=completion.PROG_NAME)


if __name__ == "__main__":  # pragma: no cover
    main()
