"""`Check`, the base class of every preflight check, and the `CheckContext` it runs in.

Each module in ``llmos.preflight.checks`` defines one subclass; the runner
(`llmos.preflight.runner`) calls ``run`` on each and collects the results.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

from llmos.preflight.host import HostFiles
from llmos.preflight.inbound import PortSpec, inbound_ports
from llmos.preflight.nvml import NvmlReader
from llmos.preflight.options import Mode, PreflightOptions
from llmos.preflight.result import CheckResult, Status

__all__ = ["Check", "CheckContext"]


@dataclass(frozen=True)
class CheckContext:
    """What a check may look at: the options, the host's files and the NVML reader."""

    options: PreflightOptions
    host: HostFiles
    nvml: NvmlReader

    @property
    def embedded(self) -> bool:
        return self.options.mode is Mode.EMBEDDED

    @property
    def is_root(self) -> bool:
        return self.options.running_as_root

    def required_ports(self) -> list[PortSpec]:
        """Ports this node must own: the role's inbound rows, or just the API port if embedded."""
        if self.embedded:
            return [PortSpec("tcp", self.options.api_port, self.options.api_port)]
        return inbound_ports(self.options.role)


class Check:
    """A node requirement. Subclasses set ``id`` and ``title`` and implement `run`."""

    id: ClassVar[str]
    title: ClassVar[str]
    cluster_only: ClassVar[bool] = False
    """Skipped in embedded mode, where no Kubernetes runs on the node."""

    def run(self, ctx: CheckContext) -> CheckResult:
        """Measure the node and judge it against the requirement. Never raise for a bad node."""
        raise NotImplementedError

    def result(
        self,
        status: Status,
        measured: str | None,
        required: str | None,
        fix: str | None = None,
        *,
        reason: str | None = None,
        data: Mapping[str, Any] | None = None,
    ) -> CheckResult:
        """A result carrying this check's id and title. A passing result carries no fix."""
        return CheckResult(
            id=self.id,
            title=self.title,
            status=status,
            measured=measured,
            required=required,
            fix=fix if status is not Status.PASS else None,
            reason=reason,
            data=dict(data or {}),
        )

    def skipped(self, reason: str, required: str | None = None) -> CheckResult:
        """A SKIP result that says why."""
        return self.result(Status.SKIP, None, required, reason=reason)
