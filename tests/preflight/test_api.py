"""The public API of llmos.preflight: what ``llmos server`` and ``llmos install`` call."""

from __future__ import annotations

from pathlib import Path

import llmos.preflight
from llmos.preflight import (
    CHECK_IDS,
    EMBEDDED_DOWNGRADED,
    Mode,
    PreflightReport,
    embedded_options,
    run_preflight,
)

from .hosttree import HostTree

EXPECTED_API = {
    "CHECK_IDS",
    "EMBEDDED_DOWNGRADED",
    "Check",
    "CheckContext",
    "CheckResult",
    "Mode",
    "NvmlDevice",
    "NvmlReader",
    "NvmlSnapshot",
    "PreflightError",
    "PreflightOptions",
    "PreflightReport",
    "PreflightUsageError",
    "RecordedNvmlReader",
    "Role",
    "Status",
    "embedded_options",
    "run_preflight",
}


def test_public_api_is_explicit() -> None:
    assert set(llmos.preflight.__all__) == EXPECTED_API
    for name in EXPECTED_API:
        assert hasattr(llmos.preflight, name)


def test_check_ids_are_unique_and_documented() -> None:
    assert len(set(CHECK_IDS)) == len(CHECK_IDS)
    docs = Path(__file__).parents[2] / "docs" / "preflight.md"
    text = docs.read_text()
    for check_id in CHECK_IDS:
        assert f"`{check_id}`" in text, f"docs/preflight.md does not document {check_id}"


def test_embedded_subset_for_llmos_server(tree: HostTree) -> None:
    options = embedded_options(tree.options(quick=False))
    assert options.mode is Mode.EMBEDDED and options.quick
    tree.cpus(1).memory_kb(2 * 1024 * 1024)
    report = run_preflight(options)
    assert isinstance(report, PreflightReport)
    assert report.failures == [], report.failures
    skipped = {r.id for r in report.skipped}
    assert {"kubernetes", "nodeport-range", "hostname-unique", "disk-iops"} <= skipped
    assert report.result("ports").data["required"] == ["8443/tcp"]
    assert {"cpu", "memory", "disk-space", "gpu"} == EMBEDDED_DOWNGRADED


def test_report_failures_lists_failed_results(tree: HostTree) -> None:
    tree.arch("mips")
    report = run_preflight(tree.options(), only=["arch", "os"])
    assert [r.id for r in report.failures] == ["arch"]
    assert report.exit_code == 1 and not report.ok
