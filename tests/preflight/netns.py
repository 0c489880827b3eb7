"""Two network namespaces joined by a veth pair: the test's own hosts for reachability tests.

The addresses (10.231.x.x) exist only inside these namespaces; they are
removed with the namespaces when the test ends.
"""

from __future__ import annotations

import secrets
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass


def ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True, text=True)


@dataclass(frozen=True)
class Namespace:
    name: str
    address: str

    def command(self, *argv: str) -> list[str]:
        return ["ip", "netns", "exec", self.name, *argv]

    def run(self, *argv: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(self.command(*argv), check=True, capture_output=True, text=True)


@contextmanager
def namespace_pair() -> Iterator[tuple[Namespace, Namespace]]:
    """Namespaces A (10.231.7.1) and B (10.231.7.2) joined by a veth pair."""
    tag = secrets.token_hex(3)
    a = Namespace(f"llmos-pf-a-{tag}", "10.231.7.1")
    b = Namespace(f"llmos-pf-b-{tag}", "10.231.7.2")
    created: list[str] = []
    try:
        for ns in (a, b):
            ip("netns", "add", ns.name)
            created.append(ns.name)
        ip("link", "add", f"pfa{tag}", "type", "veth", "peer", "name", f"pfb{tag}")
        for ns, link in ((a, f"pfa{tag}"), (b, f"pfb{tag}")):
            ip("link", "set", link, "netns", ns.name)
            ip("-n", ns.name, "addr", "add", f"{ns.address}/24", "dev", link)
            ip("-n", ns.name, "link", "set", link, "up")
            ip("-n", ns.name, "link", "set", "lo", "up")
        yield a, b
    finally:
        for name in created:
            subprocess.run(["ip", "netns", "del", name], check=False, capture_output=True)
