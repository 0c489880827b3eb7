"""Rendering objects for people (rich tables, describe) and machines (yaml, json)."""

from __future__ import annotations

import sys
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import orjson
import yaml
from rich.console import Console
from rich.table import Table
from rich.text import Text

from llmos._lib.quantity import parse_quantity
from llmos._lib.timefmt import parse_rfc3339


def make_console(stderr: bool = False) -> Console:
    """A console that wraps to a terminal, but never breaks lines sent to a pipe or file.

    Rich wraps at 80 columns when it cannot see a terminal, which splits table
    rows, fingerprints and paths in the middle; scripts that grep or copy the
    output then miss them.
    """
    # emoji=False: Rich would show ":CD:" in a CA fingerprint as a CD emoji.
    probe = Console(stderr=stderr, emoji=False)
    if probe.is_terminal:
        return probe
    return Console(stderr=stderr, emoji=False, width=100_000, soft_wrap=True)


console = make_console()
Column = tuple[str, Callable[[dict[str, Any]], str]]


def age(timestamp: str | None) -> str:
    if not timestamp:
        return "-"
    seconds = int((datetime.now(UTC) - parse_rfc3339(timestamp)).total_seconds())
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds // size}{unit}"
    return f"{max(seconds, 0)}s"


def size(quantity: str | int | None) -> str:
    """Bytes for people: ``24684096Ki`` → ``23.5Gi``; what is no quantity, as it is."""
    if quantity in (None, ""):
        return ""
    try:
        count = float(parse_quantity(quantity))
    except ValueError:
        return str(quantity)
    for suffix, unit in (("Ti", 2**40), ("Gi", 2**30), ("Mi", 2**20), ("Ki", 2**10)):
        if count >= unit:
            return f"{count / unit:.1f}{suffix}"
    return f"{count:.0f}"


def _reserved(node: dict[str, Any]) -> str:
    """What the node's workloads reserve: ``1.5 CPU, 3.0Gi``; ``-`` for nothing."""
    allocated = _status(node).get("allocated") or {}
    cpu, memory = allocated.get("cpu", "0"), allocated.get("memory", "0")
    if cpu in ("0", "") and memory in ("0", ""):
        return "-"
    cores = float(parse_quantity(cpu or "0"))
    return f"{cores:g} CPU, {size(memory) if memory != '0' else '0'}"


def _spec(obj: dict[str, Any]) -> dict[str, Any]:
    return obj.get("spec") or {}


def _status(obj: dict[str, Any]) -> dict[str, Any]:
    return obj.get("status") or {}


def _engine(obj: dict[str, Any]) -> str:
    """The engine that runs (``status.engine``), marked when ``auto`` chose it:
    ``llama-cpp (auto)``. An endpoint served elsewhere shows ``external``."""
    asked = str(_spec(obj).get("engine") or "auto")
    running = _status(obj).get("engine")
    if not running:  # not started yet: what was asked
        return asked
    if asked == "auto" and running != "external":
        return f"{running} (auto)"
    return str(running)


def _phase(obj: dict[str, Any]) -> str:
    if obj["metadata"].get("deletionTimestamp"):
        return "Terminating"
    return str(_status(obj).get("phase") or "-")


def _serving(obj: dict[str, Any]) -> str:
    """A ModelService's phase, with how far its download is: ``Downloading 42%``."""
    progress = _status(obj).get("downloadProgress") or {}
    phase = _phase(obj)
    return f"{phase} {progress['percent']}%" if "percent" in progress else phase


KIND_COLUMNS: dict[str, list[Column]] = {
    "ModelService": [
        ("MODEL", lambda o: _spec(o).get("model", "")),
        ("ENGINE", _engine),
        ("READY", lambda o: f"{_status(o).get('readyReplicas', 0)}/{_spec(o).get('replicas', 1)}"),
        ("STATUS", _serving),
    ],
    "User": [
        ("DISPLAY NAME", lambda o: _spec(o).get("displayName", "")),
        ("ROLES", lambda o: ",".join(_spec(o).get("globalRoles") or [])),
        ("ACTIVE", lambda o: str(_spec(o).get("active", True)).lower()),
    ],
    "Token": [
        ("USER", lambda o: _spec(o).get("userName", "")),
        ("TYPE", lambda o: _spec(o).get("type", "")),
        ("EXPIRES", lambda o: _spec(o).get("expiresAt") or "never"),
    ],
    "RoleTemplateBinding": [
        ("ROLE", lambda o: _spec(o).get("roleTemplate", "")),
        ("USER", lambda o: _spec(o).get("user", "")),
    ],
    "Setting": [
        ("VALUE", lambda o: str(_spec(o).get("value") or "")),
        ("DEFAULT", lambda o: str(_spec(o).get("default") or "")),
    ],
    "Secret": [("KEYS", lambda o: ",".join(_spec(o).get("keys") or []))],
    "Node": [
        ("STATUS", _phase),
        ("CPU", lambda o: _status(o).get("capacity", {}).get("cpu", "")),
        ("MEMORY", lambda o: size(_status(o).get("capacity", {}).get("memory"))),
        ("RESERVED", _reserved),
        ("VERSION", lambda o: _status(o).get("nodeInfo", {}).get("llmosVersion", "")),
    ],
    "GPUDevice": [
        ("NODE", lambda o: _spec(o).get("nodeName", "")),
        ("INDEX", lambda o: str(_status(o).get("index", ""))),
        ("PRODUCT", lambda o: _status(o).get("product", "")),
        ("MEMORY", lambda o: size(_status(o).get("memoryTotalBytes"))),
        ("HEALTH", lambda o: _status(o).get("health", "")),
        ("ALLOCATIONS", lambda o: str(len(_status(o).get("allocations") or []))),
    ],
    "Event": [
        ("TYPE", lambda o: _spec(o).get("type", "")),
        ("REASON", lambda o: _spec(o).get("reason", "")),
        (
            "OBJECT",
            lambda o: (
                f"{_spec(o).get('involvedObject', {}).get('kind', '').lower()}/"
                f"{_spec(o).get('involvedObject', {}).get('name', '')}"
            ),
        ),
        ("MESSAGE", lambda o: _spec(o).get("message", "")),
    ],
}
DEFAULT_COLUMNS: list[Column] = [("STATUS", _phase)]


class TableWriter:
    """Rows as kubectl prints them: left-aligned columns three spaces apart, no trailing
    spaces, never broken across lines. Later rows (``llmos get -w``) print no header again
    and keep the columns' widths, widening one only for a longer value."""

    GAP = "   "

    def __init__(self, columns: list[Column]) -> None:
        self.columns = columns
        self.widths: list[int] | None = None

    def write(self, items: list[dict[str, Any]]) -> None:
        rows = [[" ".join(str(get(o)).split()) for _, get in self.columns] for o in items]
        titles = [title for title, _ in self.columns]
        widths = self.widths or [len(t) for t in titles]
        widths = [max([w, *(len(row[i]) for row in rows)]) for i, w in enumerate(widths)]
        if self.widths is None:
            console.print(Text(self._line(titles, widths), style="bold"), soft_wrap=True)
        for row in rows:
            console.print(Text(self._line(row, widths)), soft_wrap=True)
        self.widths = widths

    def _line(self, cells: list[str], widths: list[int]) -> str:
        return self.GAP.join(c.ljust(w) for c, w in zip(cells, widths, strict=True)).rstrip()


def columns_of(kind: str, with_namespace: bool) -> list[Column]:
    """The columns ``llmos get`` shows for ``kind``."""
    columns: list[Column] = []
    if with_namespace:
        columns.append(("NAMESPACE", lambda o: o["metadata"].get("namespace", "")))
    columns.append(("NAME", lambda o: o["metadata"]["name"]))
    columns.extend(KIND_COLUMNS.get(kind, DEFAULT_COLUMNS))
    columns.append(("AGE", lambda o: age(o["metadata"].get("creationTimestamp"))))
    return columns


def print_objects(
    items: list[dict[str, Any]],
    kind: str,
    output: str,
    with_namespace: bool = False,
    as_list: bool = True,
    table: TableWriter | None = None,
    where: str = "",
) -> TableWriter | None:
    """Print objects; json/yaml give a List unless ``as_list`` is False and there is one.

    Whether a List comes back depends on what was asked (a listing, or one
    name), never on how many objects happen to exist, so scripts can rely on it.
    A table goes on from ``table`` (a watch's earlier rows) and is returned. An empty
    table says so, and ``where`` it looked (``" in namespace default"``).
    """
    doc: dict[str, Any] = (
        items[0] if len(items) == 1 and not as_list else {"kind": "List", "items": items}
    )
    if output == "json":
        sys.stdout.write(orjson.dumps(doc, option=orjson.OPT_INDENT_2).decode() + "\n")
        return None
    if output == "yaml":
        sys.stdout.write(yaml.safe_dump(doc, sort_keys=False))
        return None
    if output == "name":
        for obj in items:
            sys.stdout.write(f"{kind.lower()}/{obj['metadata']['name']}\n")
        return None
    if not items and table is None:
        console.print(f"No {kind} objects found{where}.", style="dim")
        return None
    table = table or TableWriter(columns_of(kind, with_namespace))
    table.write(items)
    return table


def describe(obj: dict[str, Any], events: list[dict[str, Any]]) -> None:
    meta = obj["metadata"]
    lines = [
        f"[bold]Name:[/]         {meta['name']}",
        f"[bold]Namespace:[/]    {meta.get('namespace') or '-'}",
        f"[bold]Kind:[/]         {obj.get('kind')} ({obj.get('apiVersion')})",
        f"[bold]Labels:[/]       {', '.join(f'{k}={v}' for k, v in meta.get('labels', {}).items()) or '-'}",
        f"[bold]Created:[/]      {meta.get('creationTimestamp')} ({age(meta.get('creationTimestamp'))} ago)",
        f"[bold]Generation:[/]   {meta.get('generation')}   resourceVersion: {meta.get('resourceVersion')}",
    ]
    if meta.get("deletionTimestamp"):
        lines.append(f"[bold red]Deleting since:[/] {meta['deletionTimestamp']}")
    if meta.get("finalizers"):
        lines.append(f"[bold]Finalizers:[/]   {', '.join(meta['finalizers'])}")
    for line in lines:
        console.print(line, highlight=False)
    if obj.get("spec"):
        console.print("[bold]Spec:[/]")
        spec_text = _indent(yaml.safe_dump(obj["spec"], sort_keys=False))
        console.print(spec_text, highlight=False, markup=False)
    status = dict(obj.get("status") or {})
    conditions = status.pop("conditions", [])
    if status:
        console.print("[bold]Status:[/]")
        console.print(
            _indent(yaml.safe_dump(status, sort_keys=False)), highlight=False, markup=False
        )
    if conditions:
        table = Table(title="Conditions", title_justify="left", box=None, header_style="bold")
        for title in ("TYPE", "STATUS", "REASON", "MESSAGE", "SINCE"):
            table.add_column(title, overflow="fold")
        for c in conditions:
            since = age(c.get("lastTransitionTime"))
            cells = (c["type"], c["status"], c.get("reason", ""), c.get("message", ""), since)
            table.add_row(*(Text(str(cell)) for cell in cells))
        console.print(table)
    table = Table(title="Events", title_justify="left", box=None, header_style="bold")
    for title in ("TYPE", "REASON", "COUNT", "LAST SEEN", "MESSAGE"):
        table.add_column(title, overflow="fold")
    for ev in events:
        spec = ev.get("spec") or {}
        cells = (
            spec.get("type", ""),
            spec.get("reason", ""),
            spec.get("count", 1),
            age(spec.get("lastTimestamp")),
            spec.get("message", ""),
        )
        table.add_row(*(Text(str(cell)) for cell in cells))
    if events:
        console.print(table)
    else:
        console.print("[bold]Events:[/]       <none>")


def _indent(text: str) -> str:
    return "\n".join(f"  {line}" for line in text.rstrip().splitlines())
