"""Rich rendering of preflight reports and peer matrices, for ``llmos preflight``."""

from __future__ import annotations

from rich.console import Console
from rich.table import Table
from rich.text import Text

from llmos.preflight.reachability.listener import ListenOutcome
from llmos.preflight.report import PreflightReport
from llmos.preflight.result import Status

__all__ = ["render_listening", "render_report"]

_STYLES = {
    Status.PASS: "bold green",
    Status.WARN: "bold yellow",
    Status.FAIL: "bold red",
    Status.SKIP: "dim",
}


def _status(status: Status) -> Text:
    return Text(status.value.upper(), style=_STYLES[status])


def _matrix(report: PreflightReport) -> Table | None:
    peers = [r for r in report.results if r.id.startswith("reachability/")]
    if not peers:
        return None
    columns = [f"{c['port']}/{c['protocol']}" for c in peers[0].data["ports"]]
    table = Table(title="Reachability: peer x port", title_justify="left")
    table.add_column("Peer")
    for column in columns:
        table.add_column(column, justify="center")
    for result in peers:
        cells = [_status(Status(c["status"])) for c in result.data["ports"]]
        table.add_row(str(result.data["peer"]), *cells)
    return table


def _notes(report: PreflightReport, console: Console) -> None:
    for result in report.results:
        if result.status is Status.PASS:
            continue
        if result.status is Status.SKIP:
            line = Text.assemble("  ", _status(result.status), f" {result.title}: ")
            line.append(result.reason or "", style="dim")
            console.print(line)
            continue
        line = Text.assemble("  ", _status(result.status), f" {result.title}: ")
        line.append(result.fix or "")
        if result.reason:
            line.append(f" ({result.reason})", style="dim")
        console.print(line)
        commands = result.data.get("commands")
        for command in commands or []:
            console.print(f"      {command}", markup=False, highlight=False)


def render_report(report: PreflightReport, console: Console) -> None:
    """Print the results table, the peer matrix, what to fix, and a verdict line."""
    table = Table(
        title=f"LLMOS preflight: {report.hostname} ({report.mode}, role {report.role})",
        title_justify="left",
    )
    table.add_column("Status", no_wrap=True)
    table.add_column("Check", no_wrap=True)
    table.add_column("Measured", ratio=3)
    table.add_column("Required", ratio=2)
    for result in report.results:
        table.add_row(
            _status(result.status), result.title, result.measured or "", result.required or ""
        )
    console.print(table)
    matrix = _matrix(report)
    if matrix is not None:
        console.print(matrix)
    if any(r.status is not Status.PASS for r in report.results):
        console.print("\nWhat to do:")
        _notes(report, console)
    counts = (
        f"{len(report.failures)} failed, {len(report.warnings)} warning(s), "
        f"{len(report.skipped)} skipped"
    )
    console.print(Text.assemble("\nResult: ", _status(report.verdict), f" ({counts})"))


def render_listening(outcomes: list[ListenOutcome], seconds: float, console: Console) -> None:
    """Say which ports are open for peers, and for how long."""
    table = Table(title="Temporary listeners for `llmos preflight --peer`", title_justify="left")
    table.add_column("Port")
    table.add_column("Status")
    for outcome in outcomes:
        status = (
            Text("listening", style="green")
            if outcome.error is None
            else Text(f"FAILED: {outcome.error}", style="bold red")
        )
        table.add_row(f"{outcome.port}/{outcome.protocol}", status)
    console.print(table)
    console.print(f"Listening for {seconds:g} s; press Ctrl-C to stop.")
