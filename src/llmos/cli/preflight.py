"""``llmos preflight``: check this node against the node requirements page.

Registered on the main app by `register`. Three modes: the checks (default),
``--listen`` (temporary listeners for peers to probe) and ``--peer`` (probe
peers' ports). Exit codes: 0 nothing failed, 1 something failed, 2 usage
error.
"""

from __future__ import annotations

import json
import signal
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from enum import StrEnum
from pathlib import Path
from types import FrameType
from typing import Annotated

import typer
import yaml
from rich.console import Console

from llmos.preflight import (
    Mode,
    PreflightOptions,
    PreflightReport,
    PreflightUsageError,
    RecordedNvmlReader,
    Role,
    run_preflight,
)
from llmos.preflight.inbound import inbound_ports
from llmos.preflight.options import default_data_dir
from llmos.preflight.reachability.listener import PortListener
from llmos.preflight.reachability.peers import peer_report
from llmos.preflight.render import render_listening, render_report
from llmos.preflight.runner import validate_options

__all__ = ["register"]

USAGE_ERROR = 2


class Output(StrEnum):
    TABLE = "table"
    JSON = "json"
    YAML = "yaml"


def _usage_error(message: str) -> typer.Exit:
    typer.echo(f"error: {message}", err=True)
    return typer.Exit(USAGE_ERROR)


def _emit(report: PreflightReport, output: Output) -> None:
    if output is Output.JSON:
        typer.echo(json.dumps(report.to_dict(), indent=2))
    elif output is Output.YAML:
        typer.echo(yaml.safe_dump(report.to_dict(), sort_keys=False))
    else:
        render_report(report, Console())


@contextmanager
def _stop_on_signals(listener: PortListener) -> Iterator[None]:
    def stop(_signum: int, _frame: FrameType | None) -> None:
        listener.stop_event.set()

    previous = {sig: signal.signal(sig, stop) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _listen(role: Role, seconds: float, output: Output) -> int:
    with PortListener(inbound_ports(role)) as listener, _stop_on_signals(listener):
        outcomes = listener.open()
        if output is Output.TABLE:
            render_listening(outcomes, seconds, Console())
        else:
            ports = [
                {
                    "port": o.port,
                    "protocol": o.protocol,
                    "status": "listening" if o.error is None else "fail",
                    "error": o.error,
                }
                for o in outcomes
            ]
            typer.echo(
                json.dumps({"kind": "PreflightListener", "seconds": seconds, "ports": ports})
            )
        sys.stdout.flush()
        listener.serve(seconds)
    return 1 if any(o.error for o in outcomes) else 0


class NodeRole(StrEnum):
    """A role as the CLI takes it: ``agent`` as k3s and ``llmos install --role`` call it
    (``LLMOS_ROLE`` serves both commands), or ``worker`` as the requirements page does."""

    SERVER = "server"
    AGENT = "agent"
    WORKER = "worker"

    @property
    def role(self) -> Role:
        return Role.SERVER if self is NodeRole.SERVER else Role.WORKER


def preflight(
    node_role: Annotated[
        NodeRole,
        typer.Option(
            "--role",
            help="Role this node will take (agent and worker are one).",
            envvar="LLMOS_ROLE",
        ),
    ] = NodeRole.SERVER,
    mode: Annotated[
        Mode,
        typer.Option(help="cluster (llmos install) or embedded (llmos server): relaxed checks."),
    ] = Mode.CLUSTER,
    data_dir: Annotated[
        Path | None,
        typer.Option(
            help="Data dir; disk space and speed are measured on its filesystem. "
            "[default: /var/lib/llmos as root, else $XDG_DATA_HOME/llmos]",
            envvar="LLMOS_DATA_DIR",
            show_default=False,
        ),
    ] = None,
    server: Annotated[
        str | None,
        typer.Option(
            help="URL of an existing server, to check the hostname is unique.",
            envvar="LLMOS_SERVER",
        ),
    ] = None,
    token: Annotated[
        str | None, typer.Option(help="Token for --server.", envvar="LLMOS_TOKEN")
    ] = None,
    ca_cert: Annotated[
        Path | None,
        typer.Option(
            help="CA certificate of --server; a K10 join token pins the CA without it, "
            "else TLS is not verified (warns)."
        ),
    ] = None,
    quick: Annotated[bool, typer.Option("--quick", help="Skip the disk measurement.")] = False,
    root: Annotated[
        Path, typer.Option(help="Read host files (os-release, /proc, /sys, /etc) under PATH.")
    ] = Path("/"),
    output: Annotated[Output, typer.Option("--output", "-o", help="Output format.")] = Output.TABLE,
    check: Annotated[
        list[str] | None, typer.Option(help="Run only this check id (repeatable).")
    ] = None,
    listen: Annotated[
        bool,
        typer.Option("--listen", help="Open temporary listeners on this role's ports for --peer."),
    ] = False,
    listen_timeout: Annotated[
        float, typer.Option(help="Seconds --listen keeps the ports open.", min=0.1)
    ] = 600.0,
    peer: Annotated[
        str | None,
        typer.Option(help="Probe the required ports of these hosts: HOST[,HOST...]."),
    ] = None,
    peer_node_role: Annotated[
        NodeRole,
        typer.Option(
            "--peer-role", help="Role of the --peer hosts; decides which ports they need."
        ),
    ] = NodeRole.SERVER,
    peer_timeout: Annotated[
        float, typer.Option(help="Seconds to wait for each port of a peer.", min=0.1)
    ] = 2.0,
    nvml_recording: Annotated[
        Path | None,
        typer.Option(hidden=True, help="Read GPUs from a recorded NVML snapshot (JSON)."),
    ] = None,
) -> None:
    """Check this node against the LLMOS node requirements."""
    role, peer_role = node_role.role, peer_node_role.role
    if listen and peer:
        raise _usage_error("--listen and --peer are separate runs: use one of them")
    try:
        nvml = RecordedNvmlReader.from_file(nvml_recording) if nvml_recording else None
    except (OSError, ValueError, KeyError) as exc:
        raise _usage_error(f"--nvml-recording {nvml_recording}: {exc}") from exc
    options = PreflightOptions(
        role=role,
        mode=mode,
        data_dir=data_dir or default_data_dir(),
        server=server,
        token=token,
        ca_cert=ca_cert,
        quick=quick,
        root=root,
        nvml=nvml,
    )
    try:
        validate_options(options, check)
    except PreflightUsageError as exc:
        raise _usage_error(str(exc)) from exc
    if (listen or peer) and check:
        mode_flag = "--listen" if listen else "--peer"
        raise _usage_error(f"--check selects checks to run; {mode_flag} runs none")
    if listen:
        raise typer.Exit(_listen(role, listen_timeout, output))
    if peer:
        peers = [p.strip() for p in peer.split(",") if p.strip()]
        if not peers:
            raise _usage_error("--peer needs at least one host")
        report = peer_report(options, peers, peer_role, timeout=peer_timeout)
    else:
        try:
            report = run_preflight(options, only=check)
        except PreflightUsageError as exc:
            raise _usage_error(str(exc)) from exc
    _emit(report, output)
    raise typer.Exit(report.exit_code)


def register(app: typer.Typer) -> None:
    """Add ``preflight`` to the ``llmos`` app."""
    app.command("preflight")(preflight)


def main() -> None:
    """Run ``preflight`` alone: ``python -m llmos.cli.preflight``."""
    app = typer.Typer(add_completion=False, pretty_exceptions_enable=False)
    app.command()(preflight)
    app()


if __name__ == "__main__":  # pragma: no cover
    main()
