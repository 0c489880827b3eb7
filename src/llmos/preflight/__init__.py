"""Node preflight: check a machine against the node requirements page.

``llmos preflight`` runs it; ``llmos server`` and ``llmos install`` call
`run_preflight` first and refuse to start when ``report.failures`` is not
empty (unless ``--skip-preflight``). See docs/preflight.md.
"""

from llmos.preflight.check import Check, CheckContext
from llmos.preflight.errors import PreflightError, PreflightUsageError
from llmos.preflight.nvml import NvmlDevice, NvmlReader, NvmlSnapshot, RecordedNvmlReader
from llmos.preflight.options import Mode, PreflightOptions, Role
from llmos.preflight.registry import CHECK_IDS
from llmos.preflight.report import PreflightReport
from llmos.preflight.result import CheckResult, Status
from llmos.preflight.runner import EMBEDDED_DOWNGRADED, embedded_options, run_preflight

__all__ = [
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
]
