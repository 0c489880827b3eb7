"""Results of the gateway benchmark, compared with the direct path and printed as Markdown.

``run.py`` builds one :class:`Cell` per (run, path, concurrency, reply kind)
and hands them all here. Each proxied cell is compared with the direct cell
of the same run, concurrency and reply kind: those two ran back to back, on
the same client and upstream core.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

DIRECT = "direct"


@dataclass(frozen=True)
class Cell:
    """One measured phase. ``summary`` is :meth:`loadgen.PhaseResult.summary`."""

    run: int
    path: str
    concurrency: int
    stream: bool
    summary: dict[str, Any]
    proxy_cpu_ms_per_request: float | None
    stub_cpu_ms_per_request: float | None

    @property
    def key(self) -> tuple[int, int, bool]:
        return (self.run, self.concurrency, self.stream)

    def latency(self, name: str) -> float | None:
        stats = self.summary["latency_ms"]
        return None if stats is None else float(stats[name])

    def ttfc(self, name: str) -> float | None:
        stats = self.summary["ttfc_ms"]
        return None if stats is None else float(stats[name])


def _minus(a: float | None, b: float | None) -> float | None:
    return None if a is None or b is None else a - b


def compare(cell: Cell, direct: Cell | None) -> dict[str, float | None]:
    """What ``cell``'s path adds over the direct path (ms), and its throughput ratio."""
    if direct is None:
        return {}
    direct_rps = float(direct.summary["rps"])
    return {
        "added_p50_ms": _minus(cell.latency("p50"), direct.latency("p50")),
        "added_p99_ms": _minus(cell.latency("p99"), direct.latency("p99")),
        "added_ttfc_p50_ms": _minus(cell.ttfc("p50"), direct.ttfc("p50")),
        "added_ttfc_p99_ms": _minus(cell.ttfc("p99"), direct.ttfc("p99")),
        "rps_ratio": float(cell.summary["rps"]) / direct_rps if direct_rps else None,
    }


def _directs(cells: Iterable[Cell]) -> dict[tuple[int, int, bool], Cell]:
    return {cell.key: cell for cell in cells if cell.path == DIRECT}


def to_json(cells: list[Cell]) -> list[dict[str, Any]]:
    directs = _directs(cells)
    return [
        {
            "run": cell.run,
            "path": cell.path,
            "concurrency": cell.concurrency,
            "stream": cell.stream,
            **cell.summary,
            "proxy_cpu_ms_per_request": cell.proxy_cpu_ms_per_request,
            "stub_cpu_ms_per_request": cell.stub_cpu_ms_per_request,
            **(compare(cell, directs.get(cell.key)) if cell.path != DIRECT else {}),
        }
        for cell in cells
    ]


def _ms(value: float | None, signed: bool = False) -> str:
    if value is None:
        return "n/a"
    sign = "+" if signed and value >= 0 else ""
    if abs(value) >= 100:
        return f"{sign}{value:.0f}"
    if abs(value) >= 10:
        return f"{sign}{value:.1f}"
    return f"{sign}{value:.2f}"


def _cpu(value: float | None) -> str:
    if value is None:
        return "n/a"
    return f"{value:.2f}" if value >= 1 else f"{value:.3f}"


def _ratio(value: float | None) -> str:
    if value is None:
        return "n/a"
    return f"{value:.2f}" if value >= 0.1 else f"{value:.4f}"


def _reply(stream: bool) -> str:
    return "stream" if stream else "json"


def run_table(cells: list[Cell], run: int) -> str:
    """Every path of one run, with absolute figures and the comparison with direct."""
    directs = _directs(cells)
    rows = [
        "| conc | reply | path | ok | err | req/s | vs direct | p50 ms | p99 ms "
        "| +p50 ms | +p99 ms | TTFC p50 | +TTFC p50 | +TTFC p99 | proxy CPU ms/req "
        "| stub CPU ms/req | client CPU ms/req |",
        "|---:|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for cell in cells:
        if cell.run != run:
            continue
        added = compare(cell, directs.get(cell.key)) if cell.path != DIRECT else {}
        s = cell.summary
        rows.append(
            f"| {cell.concurrency} | {_reply(cell.stream)} | {cell.path} | {s['ok']} "
            f"| {s['errors']} | {s['rps']:.0f} | {_ratio(added.get('rps_ratio'))} "
            f"| {_ms(cell.latency('p50'))} | {_ms(cell.latency('p99'))} "
            f"| {_ms(added.get('added_p50_ms'), True)} | {_ms(added.get('added_p99_ms'), True)} "
            f"| {_ms(cell.ttfc('p50'))} | {_ms(added.get('added_ttfc_p50_ms'), True)} "
            f"| {_ms(added.get('added_ttfc_p99_ms'), True)} "
            f"| {_cpu(cell.proxy_cpu_ms_per_request)} | {_cpu(cell.stub_cpu_ms_per_request)} "
            f"| {_cpu(s['client_cpu_ms_per_request'])} |"
        )
    return "\n".join(rows)


Pick = Callable[[Cell, Cell | None], str]


def _added(name: str) -> Pick:
    return lambda cell, direct: _ms(compare(cell, direct).get(name), signed=True)


def _rps(cell: Cell, direct: Cell | None) -> str:
    own = f"{cell.summary['rps']:.0f}"
    return f"{own} ({direct.summary['rps']:.0f})" if direct else own


def _rps_ratio(cell: Cell, direct: Cell | None) -> str:
    return _ratio(compare(cell, direct).get("rps_ratio"))


def _proxy_cpu(cell: Cell, direct: Cell | None) -> str:
    return _cpu(cell.proxy_cpu_ms_per_request)


# (heading, figure, streams only)
_SUMMARY_COLUMNS: list[tuple[str, Pick, bool]] = [
    ("added p50 ms", _added("added_p50_ms"), False),
    ("added p99 ms", _added("added_p99_ms"), False),
    ("added TTFC p50 ms", _added("added_ttfc_p50_ms"), True),
    ("req/s (direct)", _rps, False),
    ("vs direct", _rps_ratio, False),
    ("proxy CPU ms/req", _proxy_cpu, False),
]


def summary_table(cells: list[Cell]) -> str:
    """The proxies only, every run side by side in each cell ("run 1 / run 2")."""
    directs = _directs(cells)
    runs = sorted({cell.run for cell in cells})
    groups: dict[tuple[str, int, bool], dict[int, Cell]] = {}
    for cell in cells:
        if cell.path != DIRECT:
            groups.setdefault((cell.path, cell.concurrency, cell.stream), {})[cell.run] = cell

    headings = " | ".join(heading for heading, _, _ in _SUMMARY_COLUMNS)
    rows = [
        f"| path | conc | reply | {headings} |",
        "|---|---:|---|" + "---:|" * len(_SUMMARY_COLUMNS),
    ]
    for (path, concurrency, stream), by_run in sorted(groups.items()):
        figures = [
            "n/a"
            if streams_only and not stream
            else " / ".join(
                pick(by_run[run], directs.get(by_run[run].key)) if run in by_run else "n/a"
                for run in runs
            )
            for _, pick, streams_only in _SUMMARY_COLUMNS
        ]
        rows.append(f"| {path} | {concurrency} | {_reply(stream)} | {' | '.join(figures)} |")
    return "\n".join(rows)
