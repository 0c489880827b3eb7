"""No-existing-Kubernetes check: no k3s, rke2, kubelet or API server on the node.

Looks for their processes, their state directories and sockets, and
listeners on 6443 and 10250, and names what it found. When the findings
belong to an LLMOS installation (``/etc/llmos`` or ``/var/lib/llmos`` is
present) it says so instead of calling it a foreign cluster.
"""

from __future__ import annotations

from llmos.preflight.check import Check, CheckContext
from llmos.preflight.procfs import listeners, processes, socket_owners
from llmos.preflight.result import CheckResult, Status

__all__ = ["KUBERNETES_PATHS", "KUBERNETES_PROCESSES", "LLMOS_PATHS", "KubernetesCheck"]

KUBERNETES_PROCESSES = frozenset(
    {"k3s", "k3s-server", "k3s-agent", "rke2", "kubelet", "kube-apiserver"}
)
KUBERNETES_PATHS = (
    "/etc/kubernetes",
    "/var/lib/kubelet",
    "/var/lib/rancher/k3s",
    "/var/lib/rancher/rke2",
    "/run/k3s/containerd/containerd.sock",
    "/var/run/dockershim.sock",
)
# Docker also runs containerd on this socket, so alone it only warns.
CONTAINERD_SOCKET = "/run/containerd/containerd.sock"
KUBERNETES_PORTS = (6443, 10250)
LLMOS_PATHS = ("/etc/llmos", "/var/lib/llmos")
_REQUIRED = "no Kubernetes (k3s, rke2, kubelet) on the node"


def find_kubernetes(ctx: CheckContext) -> tuple[list[str], list[str]]:
    """What shows a Kubernetes installation, in words: (processes and paths, listeners)."""
    found = [
        f"process {p.describe()}" for p in processes(ctx.host) if p.names & KUBERNETES_PROCESSES
    ]
    found += [f"path {path}" for path in KUBERNETES_PATHS if ctx.host.exists(path)]
    taken = [s for s in listeners(ctx.host) if s.protocol == "tcp" and s.port in KUBERNETES_PORTS]
    owners = socket_owners(ctx.host, {s.inode for s in taken})
    listening = []
    for port in sorted({s.port for s in taken}):
        who = {owners[s.inode].describe() for s in taken if s.port == port and s.inode in owners}
        listening.append(
            f"listener on {port}/tcp" + (f" ({', '.join(sorted(who))})" if who else "")
        )
    return found, listening


class KubernetesCheck(Check):
    id = "kubernetes"
    title = "No existing Kubernetes"
    cluster_only = True

    def run(self, ctx: CheckContext) -> CheckResult:
        installed, listening = find_kubernetes(ctx)
        found = installed + listening
        llmos = [path for path in LLMOS_PATHS if ctx.host.exists(path)]
        data = {"found": found, "llmosPaths": llmos}
        if found and llmos:
            return self.result(
                Status.FAIL,
                f"an LLMOS installation is already on this node ({', '.join(llmos)}): "
                + "; ".join(found),
                _REQUIRED,
                "This node already runs LLMOS: use it, or remove it with `llmos uninstall` "
                "before installing again.",
                reason="existing LLMOS installation",
                data=data,
            )
        if installed:
            return self.result(
                Status.FAIL,
                "; ".join(found),
                _REQUIRED,
                "Uninstall the existing Kubernetes (e.g. k3s-uninstall.sh, rke2-uninstall.sh, "
                "kubeadm reset) or use another node.",
                data=data,
            )
        if listening:
            ports = "/".join(str(p) for p in KUBERNETES_PORTS)
            return self.result(
                Status.FAIL,
                "; ".join(found),
                _REQUIRED,
                f"Stop what listens on {ports} (LLMOS's Kubernetes needs these ports), "
                "or use another node.",
                data=data,
            )
        if llmos:
            return self.result(
                Status.WARN,
                f"LLMOS files from an earlier installation: {', '.join(llmos)}",
                _REQUIRED,
                f"An earlier LLMOS installation left files: remove {' and '.join(llmos)} "
                "(or run `llmos uninstall`) for a clean install.",
                reason="existing LLMOS installation",
                data=data,
            )
        if ctx.host.exists(CONTAINERD_SOCKET):
            return self.result(
                Status.WARN,
                f"containerd socket {CONTAINERD_SOCKET}",
                _REQUIRED,
                "containerd is running; fine if it is Docker's, but stop any other "
                "Kubernetes that uses it.",
                data=data,
            )
        return self.result(Status.PASS, "none found", _REQUIRED, data=data)
