"""`run_preflight`: run the checks for a mode and role, apply the embedded-mode policy.

Called by ``llmos preflight``, and by ``llmos server`` / ``llmos install``
before they start.

Embedded mode (``llmos server`` on one machine, often a laptop or a CI box)
must not be blocked by cluster sizing: failures of the cpu, memory,
disk-space and gpu checks become warnings there; checks that only matter
for Kubernetes (``cluster_only``) are skipped; and the port check covers
only the API port.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable
from dataclasses import replace

from llmos.preflight.check import Check, CheckContext
from llmos.preflight.checks._hostname import hostname
from llmos.preflight.errors import PreflightUsageError
from llmos.preflight.host import HostFiles
from llmos.preflight.nvml import PynvmlReader
from llmos.preflight.options import Mode, PreflightOptions
from llmos.preflight.registry import CHECK_IDS, all_checks
from llmos.preflight.report import PreflightReport
from llmos.preflight.result import CheckResult, Status

__all__ = ["EMBEDDED_DOWNGRADED", "embedded_options", "run_preflight", "validate_options"]

logger = logging.getLogger(__name__)

EMBEDDED_DOWNGRADED = frozenset({"cpu", "memory", "disk-space", "gpu"})
"""Checks whose failures only warn in embedded mode."""

_EMBEDDED_NOTE = "embedded mode: below cluster sizing, does not block `llmos server`"


def _run_one(check: Check, ctx: CheckContext) -> CheckResult:
    if check.cluster_only and ctx.embedded:
        return check.skipped("cluster mode only; not needed by the embedded server")
    try:
        result = check.run(ctx)
    except Exception as exc:  # a bug in a check must not hide the other results
        logger.exception("preflight check %s crashed", check.id)
        return CheckResult(
            id=check.id,
            title=check.title,
            status=Status.WARN,
            measured=None,
            required=None,
            fix="This is a bug in llmos preflight: please report it with the traceback "
            "logged on stderr.",
            reason=f"the check could not run: {type(exc).__name__}: {exc}",
        )
    if ctx.embedded and check.id in EMBEDDED_DOWNGRADED:
        result = result.downgraded(_EMBEDDED_NOTE)
    return result


def validate_options(options: PreflightOptions, only: Iterable[str] | None = None) -> None:
    """Raise `PreflightUsageError` for options that make no sense, whatever the run does."""
    wanted = set(only) if only is not None else set()
    if wanted - set(CHECK_IDS):
        unknown = ", ".join(sorted(wanted - set(CHECK_IDS)))
        raise PreflightUsageError(f"unknown check id(s): {unknown}; known: {', '.join(CHECK_IDS)}")
    if bool(options.server) != bool(options.token):
        raise PreflightUsageError("--server and --token go together: pass both or neither")
    if options.ca_cert is not None and not options.ca_cert.is_file():
        raise PreflightUsageError(f"--ca-cert {options.ca_cert}: no such file")
    if not options.root.is_dir():
        raise PreflightUsageError(f"--root {options.root}: not a directory")


def run_preflight(
    options: PreflightOptions | None = None, *, only: Iterable[str] | None = None
) -> PreflightReport:
    """Check this node against the requirements page and return the report.

    ``only`` limits the run to the named check ids. Raises
    `PreflightUsageError` for options that make no sense; a node that fails
    is a report with ``failures``, not an exception.
    """
    options = options or PreflightOptions()
    wanted = set(only) if only is not None else None
    validate_options(options, wanted)
    host = HostFiles(options.root)
    ctx = CheckContext(options=options, host=host, nvml=options.nvml or PynvmlReader())
    started = time.monotonic()
    results = tuple(
        _run_one(check, ctx) for check in all_checks() if wanted is None or check.id in wanted
    )
    return PreflightReport(
        results=results,
        mode=options.mode.value,
        role=options.role.value,
        hostname=hostname(host),
        root=str(options.root),
        data_dir=str(options.data_dir),
        duration_seconds=time.monotonic() - started,
    )


def embedded_options(base: PreflightOptions | None = None) -> PreflightOptions:
    """``base`` (or the defaults) set for the quick embedded-mode subset ``llmos server`` runs."""
    return replace(base or PreflightOptions(), mode=Mode.EMBEDDED, quick=True)
