"""The inbound rules table of the requirements page, as data.

Which ports a node must serve depends on its role (and, for traffic from a
peer, on the peer's role). The port, firewalld and reachability checks all
read this one table.
"""

from __future__ import annotations

from dataclasses import dataclass

from llmos.preflight.options import Role

__all__ = [
    "INBOUND_RULES",
    "NODEPORT_RANGE",
    "InboundRule",
    "PortSpec",
    "firewall_cmd_lines",
    "inbound_ports",
]

_ALL = frozenset(Role)
_SERVERS = frozenset({Role.SERVER})
_WORKERS = frozenset({Role.WORKER})


@dataclass(frozen=True, order=True)
class PortSpec:
    """One protocol and port range, e.g. TCP 2379-2380."""

    protocol: str
    first: int
    last: int

    def __str__(self) -> str:
        span = str(self.first) if self.first == self.last else f"{self.first}-{self.last}"
        return f"{span}/{self.protocol}"

    def ports(self) -> range:
        """Every port number in the range."""
        return range(self.first, self.last + 1)


@dataclass(frozen=True)
class InboundRule:
    """A row of the inbound rules table."""

    port: PortSpec
    sources: frozenset[Role]
    destinations: frozenset[Role]
    description: str


NODEPORT_RANGE = PortSpec("tcp", 30000, 32767)

INBOUND_RULES: tuple[InboundRule, ...] = (
    InboundRule(PortSpec("tcp", 2379, 2380), _SERVERS, _SERVERS, "etcd (HA, embedded etcd)"),
    InboundRule(PortSpec("tcp", 6443, 6443), _WORKERS, _SERVERS, "Kubernetes API server"),
    InboundRule(PortSpec("tcp", 8443, 8443), _ALL, _ALL, "LLMOS dashboard and API"),
    InboundRule(PortSpec("udp", 8472, 8472), _ALL, _ALL, "VXLAN network"),
    InboundRule(PortSpec("tcp", 10250, 10250), _ALL, _ALL, "metrics server (kubelet)"),
    InboundRule(PortSpec("tcp", 5001, 5001), _ALL, _ALL, "distributed registry (Spegel)"),
    InboundRule(PortSpec("tcp", 6443, 6443), _ALL, _ALL, "distributed registry (Spegel)"),
    InboundRule(NODEPORT_RANGE, _ALL, _ALL, "NodePort range"),
)


def inbound_ports(
    destination: Role, source: Role | None = None, *, nodeports: bool = False
) -> list[PortSpec]:
    """Ports a node of role ``destination`` must accept, sorted and without repeats.

    With ``source``, only the rows that allow traffic from that role; without
    it, every row whose destination includes ``destination``. The NodePort
    range is left out unless ``nodeports`` is set.
    """
    specs = {
        rule.port
        for rule in INBOUND_RULES
        if destination in rule.destinations
        and (source is None or source in rule.sources)
        and (nodeports or rule.port != NODEPORT_RANGE)
    }
    return sorted(specs, key=lambda s: (s.first, s.protocol))


def firewall_cmd_lines(ports: list[PortSpec]) -> list[str]:
    """The exact ``firewall-cmd`` lines that open ``ports``, then reload."""
    lines = [f"firewall-cmd --permanent --add-port={spec}" for spec in ports]
    return [*lines, "firewall-cmd --reload"]
