"""``/metrics`` text: the same bytes as ``prometheus_client.generate_latest``, scrape after scrape."""

from __future__ import annotations

import math
from collections.abc import Iterator

import psutil
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, Info, generate_latest
from prometheus_client.core import GaugeHistogramMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from llmos.api.exposition import Exposition
from llmos.gateway.usage import Usage
from llmos.runtime.proctable import process_table


class Odd(Collector):
    """Values and labels that need care: escapes, zero's sign, NaN, infinities, timestamps."""

    def __init__(self) -> None:
        self.value = 0.0

    def collect(self) -> Iterator[Metric]:
        family = GaugeMetricFamily(
            "odd_value", "Help with a \\ backslash\nand a newline.", labels=["path", "why"]
        )
        family.add_metric(['C:\\temp\\"x"', "line\nbreak"], self.value)
        family.add_metric(["zero", "negative"], -0.0)
        family.add_metric(["zero", "positive"], 0.0)
        family.add_metric(["nan", "x"], math.nan)
        family.add_metric(["inf", "x"], math.inf)
        family.add_metric(["-inf", "x"], -math.inf)
        family.add_metric(["big", "x"], 1.5e21)
        family.add_metric(["stamped", "x"], 3.0, timestamp=1_700_000_000.25)
        yield family
        histogram = GaugeHistogramMetricFamily(
            "odd_queue", "A gauge histogram: _gsum and _gcount go apart."
        )
        histogram.add_metric([], [("1.0", 2.0), ("+Inf", 5.0)], gsum_value=7.5)
        yield histogram


def registry() -> tuple[CollectorRegistry, Odd, Usage]:
    found = CollectorRegistry()
    usage = Usage(found)
    odd = Odd()
    found.register(odd)
    Counter("plain_requests", "A counter with _created.", ["code"], registry=found).labels(
        "200"
    ).inc()
    Gauge("plain_gauge", "No labels.", registry=found).set(2.5)
    Histogram("plain_seconds", "A histogram.", registry=found).observe(0.3)
    Info("plain_build", "An info metric.", registry=found).info({"version": "1.2"})
    return found, odd, usage


def test_same_bytes_as_generate_latest_over_scrapes() -> None:
    found, odd, usage = registry()
    exposition = Exposition(found)
    for scrape in range(4):
        # Series come and go between scrapes, and values move.
        usage.record(f"team/model-{scrape}", "alice", "key-1", 200, 0.2, 20, 40, 0.05)
        usage.record("team/model-0", "bob", "key-2", 429, 0.001, 0, 0, None)
        odd.value = scrape * 0.1
        ours, theirs = exposition.render().decode(), generate_latest(found).decode()
        assert ours == theirs, scrape
    assert 'path="C:\\\\temp\\\\\\"x\\"",why="line\\nbreak"' in ours
    assert 'odd_value{path="zero",why="negative"} -0.0\n' in ours
    assert "# TYPE odd_queue_gsum gauge\n" in ours


def test_forgets_series_that_are_gone() -> None:
    found = CollectorRegistry()
    gauge = Gauge("models", "One series per model.", ["model"], registry=found)
    exposition = Exposition(found)
    for i in range(100):
        gauge.labels(f"m{i}").set(i)
    exposition.render()
    for i in range(99):
        gauge.remove(f"m{i}")
    assert exposition.render().decode().count("models{") == 1
    assert len(exposition._heads) == 1


def test_process_table_matches_psutil() -> None:
    table = process_table()
    me = psutil.Process()
    cpu, rss = table.usage[me.pid]
    times = me.cpu_times()
    assert abs(cpu - (times.user + times.system)) < 0.5
    assert abs(rss - me.memory_info().rss) < 8 * 2**20
    assert me.pid in table.children[me.ppid()]
    assert table.tree(me.pid)[0] == me.pid
    assert table.tree(2**22 + 1) == []  # no such process
