"""Carries out a plan (``install.plan``) on a host, one step at a time, saying what it does.

``llmos install`` and ``llmos uninstall`` call :func:`execute`. Files are
written under ``root`` (``/`` for real, a fixture folder in tests). Commands
run only when ``run_commands`` is set (a real install as root); otherwise
each is listed as not run. The first command that fails stops the plan with
:class:`~llmos.install.errors.StepFailed`, naming the step and its exit code.
"""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

from llmos._lib.errors import Reason
from llmos.install.errors import StepFailed
from llmos.install.plan import Remove, Run, Step, WriteFile, write_file

__all__ = ["execute"]


def execute(
    steps: list[Step], root: Path, *, run_commands: bool, echo: Callable[[str], None]
) -> None:
    total = len(steps)
    for number, step in enumerate(steps, 1):
        head = f"[{number}/{total}]"
        if isinstance(step, WriteFile):
            write_file(step, root)
            echo(f"{head} wrote {step.path} (mode {step.mode:04o})")
        elif isinstance(step, Remove):
            echo(f"{head} {_remove(root / step.path.lstrip('/'))} {step.path} ({step.why})")
        else:
            _run(step, head, root, run_commands=run_commands, echo=echo)


def _remove(target: Path) -> str:
    if target.is_dir() and not target.is_symlink():
        shutil.rmtree(target)
        return "removed"
    if target.exists() or target.is_symlink():
        target.unlink()
        return "removed"
    return "already gone:"


def _run(
    step: Run, head: str, root: Path, *, run_commands: bool, echo: Callable[[str], None]
) -> None:
    command = " ".join(shlex.quote(arg) for arg in step.argv)
    if step.only_if and not (root / step.only_if.lstrip("/")).exists():
        echo(f"{head} skipped {step.why}: {step.only_if} is not there")
        return
    if not run_commands:
        echo(f"{head} not run (files only, under {root}): {step.why}: {command}")
        return
    echo(f"{head} {step.why}: {command}")
    try:
        done = subprocess.run(step.argv, env={**os.environ, **dict(step.env)}, check=False)
    except OSError as exc:
        raise StepFailed(
            f"step {head} ({step.why}) could not start {step.argv[0]}: {exc.strerror}. "
            "Nothing after it ran.",
            Reason.BAD_REQUEST,
        ) from exc
    if done.returncode != 0:
        raise StepFailed(
            f"step {head} ({step.why}) failed with exit code {done.returncode}: {command}. "
            "Nothing after it ran; fix the cause (its output is above) and run the command "
            "again, or `llmos uninstall` to start over.",
            Reason.BAD_REQUEST,
        )
