"""NodePort range check: report processes already listening in 30000-32767.

Kubernetes hands these ports to Services; a local listener there will clash
with a NodePort later, so it warns.
"""

from __future__ import annotations

from llmos.preflight.check import Check, CheckContext
from llmos.preflight.checks.ports import describe_owners
from llmos.preflight.inbound import NODEPORT_RANGE
from llmos.preflight.procfs import listeners
from llmos.preflight.result import CheckResult, Status

__all__ = ["NodePortRangeCheck"]


class NodePortRangeCheck(Check):
    id = "nodeport-range"
    title = "NodePort range unused"
    cluster_only = True

    def run(self, ctx: CheckContext) -> CheckResult:
        taken = [
            s
            for s in listeners(ctx.host)
            if s.protocol == "tcp" and NODEPORT_RANGE.first <= s.port <= NODEPORT_RANGE.last
        ]
        required = f"no listeners in {NODEPORT_RANGE}"
        owners = describe_owners(ctx, taken)
        ports = sorted({s.port for s in taken})
        data = {"listeners": [{"port": p, "processes": owners.get(p, [])} for p in ports]}
        if not ports:
            return self.result(Status.PASS, "none", required, data=data)
        described = [f"{p}" + (f" ({', '.join(owners[p])})" if p in owners else "") for p in ports]
        return self.result(
            Status.WARN,
            "listening: " + ", ".join(described),
            required,
            "Move these services off 30000-32767, or they will clash with Kubernetes NodePorts.",
            data=data,
        )
