"""Telling a sandboxed workload's program from the sandbox around it, among a server's processes."""

from __future__ import annotations

from pathlib import Path


def is_the_program(argv: list[str]) -> bool:
    """Whether ``argv`` is a workload's program itself: bwrap names it too, and so does the
    sandbox's entry program, for the moment until it becomes the program (exec)."""
    return (
        bool(argv)
        and Path(argv[0]).name != "bwrap"
        and not any(arg.endswith("sandbox_enter.py") for arg in argv)
    )
