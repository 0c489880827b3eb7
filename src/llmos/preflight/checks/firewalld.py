"""firewalld check: when firewalld runs, warn and print the lines that open this role's ports."""

from __future__ import annotations

from llmos.preflight.check import Check, CheckContext
from llmos.preflight.inbound import PortSpec, firewall_cmd_lines, inbound_ports
from llmos.preflight.procfs import processes
from llmos.preflight.result import CheckResult, Status

__all__ = ["FirewalldCheck"]


class FirewalldCheck(Check):
    """firewalld counts as active when its process runs (``firewalld`` in ``/proc``)."""

    id = "firewalld"
    title = "firewalld"

    def run(self, ctx: CheckContext) -> CheckResult:
        running = [p for p in processes(ctx.host) if "firewalld" in p.names]
        required = "firewalld off, or the inbound ports open"
        ports: list[PortSpec] = (
            ctx.required_ports()
            if ctx.embedded
            else inbound_ports(ctx.options.role, nodeports=True)
        )
        if not running:
            return self.result(
                Status.PASS,
                "not running",
                required,
                data={"commands": [], "ports": [str(p) for p in ports]},
            )
        commands = firewall_cmd_lines(ports)
        return self.result(
            Status.WARN,
            f"active ({running[0].describe()})",
            required,
            "Turn it off (systemctl disable --now firewalld) or open the ports with the "
            "firewall-cmd lines shown.",
            data={"commands": commands, "ports": [str(p) for p in ports]},
        )
