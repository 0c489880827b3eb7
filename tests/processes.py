"""A server's child processes and their command lines, read the way tests need them: a child
that has just ended (gone, or a zombie its parent has not reaped yet) has no command line."""

from __future__ import annotations

import psutil


def argv_of(process: psutil.Process) -> list[str]:
    """``process``'s command line; empty once it has ended, zombie included."""
    try:
        return process.cmdline()  # type: ignore[no-any-return]
    except psutil.NoSuchProcess:  # ZombieProcess is one
        return []


def descendants(pid: int) -> list[tuple[psutil.Process, list[str]]]:
    """Every live process under ``pid``, with its command line."""
    try:
        children = psutil.Process(pid).children(recursive=True)
    except psutil.NoSuchProcess:
        return []
    return [(child, argv) for child in children if (argv := argv_of(child))]
