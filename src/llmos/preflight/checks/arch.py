"""Architecture check: LLMOS runs on x86_64 and arm64/aarch64 only."""

from __future__ import annotations

import os

from llmos.preflight.check import Check, CheckContext
from llmos.preflight.result import CheckResult, Status

__all__ = ["ArchitectureCheck"]

SUPPORTED = {"x86_64": "x86_64", "amd64": "x86_64", "aarch64": "arm64", "arm64": "arm64"}


class ArchitectureCheck(Check):
    """Reads ``/proc/sys/kernel/arch`` (so fixture trees can set it), else ``uname -m``."""

    id = "arch"
    title = "Architecture"

    def run(self, ctx: CheckContext) -> CheckResult:
        text = ctx.host.read_text("/proc/sys/kernel/arch")
        machine = text.strip() if text else os.uname().machine
        required = "x86_64 or arm64/aarch64"
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
