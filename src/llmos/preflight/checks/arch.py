"""Architecture check: LLMOS runs on x86_64 and arm64/aarch64 only."""

from __future__ import annotations

import os

from llmos.preflight.check import Check, CheckContext
from llmos.preflight.checks._thresholds import unreadable
from llmos.preflight.result import CheckResult, Status

__all__ = ["ArchitectureCheck"]

_ARCH = "/proc/sys/kernel/arch"
SUPPORTED = {"x86_64": "x86_64", "amd64": "x86_64", "aarch64": "arm64", "arm64": "arm64"}


class ArchitectureCheck(Check):
    """Reads ``/proc/sys/kernel/arch`` (so fixture trees can set it), else ``uname -m``.

    ``uname`` describes the machine preflight runs on, so under a fixture
    ``--root`` without that file the architecture is unknown (a warning).
    """

    id = "arch"
    title = "Architecture"

    def run(self, ctx: CheckContext) -> CheckResult:
        text = (ctx.host.read_text(_ARCH) or "").strip()
        required = "x86_64 or arm64/aarch64"
        if not text and not ctx.host.is_live:
            return unreadable(self, ctx, _ARCH, "architecture", required)
        machine = text or os.uname().machine
        family = SUPPORTED.get(machine.lower())
        if family is None:
            return self.result(
                Status.FAIL,
                machine,
                required,
                "Use an x86_64 or arm64 machine; LLMOS ships no build for this architecture.",
                data={"machine": machine},
            )
        return self.result(Status.PASS, machine, required, data={"machine": machine})
