"""The node's processes in one pass over ``/proc``: who is whose child, and their use.

The metrics (``llmos_workload_*``) and the GPU share watch
(``llmos.controllers.gpushare``) sum a replica's process tree: the replica's own
process and every descendant alive when the table was read.
"""

from __future__ import annotations

import os
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

__all__ = ["ProcessTable", "process_table"]


@dataclass(frozen=True)
class ProcessTable:
    """Every process of the node: its children, and its CPU seconds and resident bytes."""

    children: dict[int, list[int]]
    usage: dict[int, tuple[float, int]]

    def tree(self, root: int) -> list[int]:
        """``root`` and its descendants that were alive when the table was read."""
        found, stack = [], [root]
        while stack:
            pid = stack.pop()
            if pid in self.usage:
                found.append(pid)
                stack.extend(self.children.get(pid, ()))
        return found


_TICKS = os.sysconf("SC_CLK_TCK")
_PAGE = os.sysconf("SC_PAGE_SIZE")


def process_table(proc: Path = Path("/proc")) -> ProcessTable:
    """One pass over ``/proc/*/stat``: each file gives the parent, the user and system
    CPU ticks and the resident pages (proc(5)), so a scrape reads one small file per
    process, where psutil read two per replica process besides a pass for the parents."""
    children: dict[int, list[int]] = defaultdict(list)
    usage: dict[int, tuple[float, int]] = {}
    for entry in os.scandir(proc):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"{entry.path}/stat", "rb") as f:
                stat = f.read()
        except OSError:  # gone since the listing
            continue
        # The command name, in parentheses, may hold spaces and parentheses itself.
        fields = stat[stat.rindex(b")") + 2 :].split()
        pid = int(entry.name)
        children[int(fields[1])].append(pid)
        usage[pid] = ((int(fields[11]) + int(fields[12])) / _TICKS, int(fields[21]) * _PAGE)
    return ProcessTable(children, usage)
