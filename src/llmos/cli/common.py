"""Shared CLI plumbing: turning CLIError into a clean message and an exit code."""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable
from typing import Annotated, Any, TypeVar

import typer
from rich.markup import escape

from llmos.cli.client import CLIError
from llmos.cli.output import make_console

F = TypeVar("F", bound=Callable[..., Any])
err = make_console(stderr=True)
OUTPUT_HELP = "Output format: table, yaml, json or name."
PasswordStdinOpt = Annotated[
    bool, typer.Option("--password-stdin", help="Read the password from stdin.")
]
NamespaceOpt = Annotated[
    str | None,
    typer.Option(
        "--namespace", "-n", help="The namespace (default: $LLMOS_NAMESPACE, else default)."
    ),
]


def friendly(fn: F) -> F:
    """Show a CLIError as 'error: …' (with field details), exit 1, no traceback."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except CLIError as exc:
            # Messages quote user and server text: print it as text, not as Rich markup.
            err.print(f"[bold red]error:[/] {escape(str(exc))}", highlight=False)
            for line in exc.details:
                err.print(f"  - {line}", highlight=False, markup=False)
            raise typer.Exit(exc.code) from None
        except KeyboardInterrupt:
            sys.exit(130)

    return wrapper  # type: ignore[return-value]


def check_output(output: str) -> str:
    if output not in ("table", "yaml", "json", "name"):
        raise CLIError(f"unknown output format {output!r}: use table, yaml, json or name", code=2)
    return output
