"""Turn a peer probe matrix into a `PreflightReport`: one result per peer.

Used by ``llmos preflight --peer``. The ports probed are those the peer's
role must accept from this node's role (inbound rules table).
"""

from __future__ import annotations

import socket
import time

from llmos.preflight.inbound import inbound_ports
from llmos.preflight.options import PreflightOptions, Role
from llmos.preflight.reachability.probe import PortProbe, probe_matrix
from llmos.preflight.report import PreflightReport
from llmos.preflight.result import CheckResult, Status

__all__ = ["peer_report"]


def _peer_result(peer: str, cells: list[PortProbe], required: str) -> CheckResult:
    failed = [c for c in cells if c.status is Status.FAIL]
    reached = len(cells) - len(failed)
    blocked = ", ".join(f"{c.port}/{c.protocol}" for c in failed)
    return CheckResult(
        id=f"reachability/{peer}",
        title=f"Reachability of {peer}",
        status=Status.FAIL if failed else Status.PASS,
        measured=f"{reached} of {len(cells)} ports reachable"
        + (f"; blocked: {blocked}" if failed else ""),
        required=required,
        fix=(
            f"Open {blocked} on {peer} (and on firewalls between), and check that "
            "`llmos preflight --listen` runs there."
        )
        if failed
        else None,
        data={"peer": peer, "ports": [c.to_dict() for c in cells]},
    )


def peer_report(
    options: PreflightOptions, peers: list[str], peer_role: Role, timeout: float = 2.0
) -> PreflightReport:
    """Probe each peer's required ports and report one result per peer."""
    started = time.monotonic()
    specs = inbound_ports(peer_role, options.role)
    required = "reachable: " + ", ".join(str(s) for s in specs)
    cells = probe_matrix(peers, specs, timeout)
    results = tuple(
        _peer_result(peer, [c for c in cells if c.peer == peer], required) for peer in peers
    )
    return PreflightReport(
        results=results,
        mode=options.mode.value,
        role=options.role.value,
        hostname=socket.gethostname(),
        root=str(options.root),
        data_dir=str(options.data_dir),
        duration_seconds=time.monotonic() - started,
    )
