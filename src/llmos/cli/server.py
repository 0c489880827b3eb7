"""``llmos server``: run embedded mode. Its flags are generated from ServerConfig.

Each field of :class:`~llmos.api.config.ServerConfig` becomes ``--kebab-case``
(a yes-or-no one also ``--no-kebab-case``);
only flags actually given override the environment and the config file.
"""

from __future__ import annotations

import asyncio
import inspect
import sys
import types
import typing
from typing import Annotated, Any

import typer
from pydantic import ValidationError

from llmos._lib.errors import LLMOSError


def _flag_type(annotation: Any) -> Any:
    """The type Typer should parse a flag as: Optional[...] so that unset means None."""
    origin = typing.get_origin(annotation)
    args = [a for a in typing.get_args(annotation) if a is not type(None)]
    if origin in (typing.Union, types.UnionType) and len(args) == 1:
        return _flag_type(args[0])
    if origin is list:
        return list[str] | None
    return annotation | None


def _signature() -> inspect.Signature:
    """One keyword parameter per ServerConfig field, each a ``--kebab-case`` option."""
    from llmos.api.config import ServerConfig

    params = []
    for name, field in ServerConfig.model_fields.items():
        flag = "--" + name.replace("_", "-")
        env = f"LLMOS_{name.upper()}"
        if _flag_type(field.annotation) == bool | None:  # --x turns it on, --no-x off
            flag = f"{flag}/--no-{flag[2:]}"
        option = typer.Option(flag, help=f"{field.description or ''} [env {env}]")
        annotation = Annotated[_flag_type(field.annotation), option]  # type: ignore[valid-type]
        params.append(
            inspect.Parameter(
                name, inspect.Parameter.KEYWORD_ONLY, default=None, annotation=annotation
            )
        )
    return inspect.Signature(params)


def _run(**given: Any) -> None:
    from pydantic_settings import SettingsError

    from llmos._lib.logs import setup_logging
    from llmos.api import server
    from llmos.api.config import ServerConfig

    flags = {k: v for k, v in given.items() if v is not None and v != ()}
    if "tls_sans" in flags:
        flags["tls_sans"] = ",".join(flags["tls_sans"])
    try:
        config = ServerConfig(**flags)
    except ValidationError as exc:
        for error in exc.errors(include_url=False):
            typer.echo(f"error: {_describe(error)}", err=True)
        sys.exit(2)
    except SettingsError as exc:
        typer.echo(f"error: {exc}", err=True)
        sys.exit(2)
    except LLMOSError as exc:
        typer.echo(f"error: {exc}", err=True)
        sys.exit(2)
    setup_logging(config.log_level, config.log_format)
    if not config.skip_preflight:
        _preflight(config)
    try:
        _run_loop(server.run(config))
    except LLMOSError as exc:
        typer.echo(f"error: {exc}", err=True)
        sys.exit(1)
    except KeyboardInterrupt:
        pass


def _describe(error: Any) -> str:
    """One invalid setting: the field, where it can be set, the problem and the value."""
    from llmos.api.config import camel

    field = ".".join(str(p) for p in error["loc"])
    name = str(error["loc"][0]) if error["loc"] else field
    where = f"--{name.replace('_', '-')} / LLMOS_{name.upper()} / config key {camel(name)}"
    return f"{field} ({where}): {error['msg']}, got {error['input']!r}"


def _run_loop(main: Any) -> None:
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop comes with uvicorn[standard]
        asyncio.run(main)
        return
    uvloop.run(main)


def _preflight(config: Any) -> None:
    """Run the embedded-mode preflight checks; refuse to start on a failure."""
    from llmos.preflight import PreflightOptions, embedded_options, run_preflight

    options = embedded_options(PreflightOptions(data_dir=config.data_dir, api_port=config.port))
    report = run_preflight(options)
    if not report.failures:
        return
    typer.echo("error: preflight checks failed:", err=True)
    for result in report.failures:
        typer.echo(f"  - {result.title}: {result.measured} (required: {result.required})", err=True)
        if result.fix:
            typer.echo(f"    fix: {result.fix}", err=True)
    typer.echo("Fix them, or start anyway with --skip-preflight.", err=True)
    sys.exit(1)


def register(app: typer.Typer) -> None:
    def server(**given: Any) -> None:
        """Run LLMOS in embedded mode on this machine.

        The API, the dashboard and the OpenAI-compatible gateway share one HTTPS port.
        """
        _run(**given)

    server.__signature__ = _signature()  # type: ignore[attr-defined]
    app.command("server")(server)
