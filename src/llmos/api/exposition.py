"""The Prometheus text format for ``/metrics``, as ``prometheus_client.generate_latest``
writes it, with each sample's name and labels formatted once.

A scrape writes a few thousand lines, and most of each line is the same from
one scrape to the next: ``llmos_gateway_request_seconds_bucket{le="0.5",
model="team/chat"} `` changes only in its value. ``generate_latest`` escapes
and joins every label of every line again each time, which was about half of
a scrape with 50 models (bench/metrics.py). ``Exposition`` keeps each line's
formatted head between scrapes, keyed by the sample's name and labels, and
forgets heads that the latest scrape did not write, so series that are gone
(a deleted model) do not pile up. Values are formatted as ``generate_latest``
formats them (Go's float syntax), memoized within one scrape, since most are
small counts that repeat.

The output is byte for byte ``generate_latest``'s (tests/api/test_exposition.py
compares the two), for the default escaping of names (``underscores``).
"""

from __future__ import annotations

import threading

from prometheus_client import CollectorRegistry
from prometheus_client.openmetrics.exposition import escape_label_name, escape_metric_name
from prometheus_client.samples import Sample
from prometheus_client.utils import floatToGoString

# Samples an OpenMetrics family can hold that the Prometheus text format writes
# as a gauge family of their own, after the family's own samples.
_OPENMETRICS_ONLY = ("_created", "_gsum", "_gcount")
# Family types the text format names differently.
_TEXT_TYPES = {
    "info": "gauge",
    "stateset": "gauge",
    "gaugehistogram": "histogram",
    "unknown": "untyped",
}

_Key = tuple[str, tuple[tuple[str, str], ...]]


def _label_value(value: str) -> str:
    return value.replace("\\", r"\\").replace("\n", r"\n").replace('"', r"\"")


def _help(name: str, documentation: str) -> str:
    text = documentation.replace("\\", r"\\").replace("\n", r"\n")
    return f"# HELP {escape_metric_name(name)} {text}\n"


def _head(sample: Sample) -> str:
    """``name{label="value",...} `` with the labels sorted, as generate_latest writes it."""
    name = escape_metric_name(sample.name)
    if not sample.labels:
        return f"{name} "
    labels = ",".join(
        f'{escape_label_name(k)}="{_label_value(v)}"' for k, v in sorted(sample.labels.items())
    )
    return f"{name}{{{labels}}} "


class Exposition:
    """``render()`` is one scrape of ``registry`` in the text format, as bytes."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.registry = registry
        self._heads: dict[_Key, str] = {}
        # /metrics renders in a worker thread: two scrapes at once must not
        # swap half-built caches.
        self._lock = threading.Lock()

    def render(self) -> bytes:
        with self._lock:
            return self._render()

    def _render(self) -> bytes:
        known, heads = self._heads, {}
        values: dict[float | str, str] = {}
        out: list[str] = []

        def line(sample: Sample) -> str:
            key = (sample.name, tuple(sample.labels.items()))
            head = known.get(key)
            if head is None:
                head = _head(sample)
            heads[key] = head
            # Zero by its text: 0.0 and -0.0 are one key but two strings.
            memo = sample.value or str(sample.value)
            value = values.get(memo)
            if value is None:
                value = values[memo] = floatToGoString(sample.value)  # type: ignore[no-untyped-call]
            if sample.timestamp is None:
                return f"{head}{value}\n"
            return f"{head}{value} {int(float(sample.timestamp) * 1000):d}\n"

        for metric in self.registry.collect():
            name, kind = metric.name, metric.type
            if kind == "counter":
                name += "_total"
            elif kind == "info":
                name += "_info"
            kind = _TEXT_TYPES.get(kind, kind)
            out.append(_help(name, metric.documentation))
            out.append(f"# TYPE {escape_metric_name(name)} {kind}\n")
            apart: dict[str, list[str]] = {}
            for sample in metric.samples:
                suffix = sample.name[len(metric.name) :]
                if suffix in _OPENMETRICS_ONLY and sample.name.startswith(metric.name):
                    apart.setdefault(suffix, []).append(line(sample))
                else:
                    out.append(line(sample))
            for suffix, lines in sorted(apart.items()):
                out.append(_help(metric.name + suffix, metric.documentation))
                out.append(f"# TYPE {escape_metric_name(metric.name + suffix)} gauge\n")
                out.extend(lines)
        self._heads = heads
        return "".join(out).encode()
