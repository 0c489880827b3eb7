"""Whether a workload that runs users' code runs in the sandbox, and what its status says about it.

The ``--workload-sandbox`` mode decides (:class:`~llmos.runtime.local.sandbox.Sandbox`):

- ``auto`` (the default): in the sandbox where bubblewrap works on this node;
  elsewhere the workload runs as the server's user, and its ``Isolated``
  condition is False with the reason and the fix;
- ``required``: a node without a working sandbox does not start it;
- ``off``: never in the sandbox (a single-user workstation, say).

Every notebook reports it in an ``Isolated`` condition.
"""

from __future__ import annotations

import logging
import os
import pwd
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

from llmos.controllers.errors import PermanentError
from llmos.resources.meta import set_condition
from llmos.runtime.local.sandbox import Confinement, Sandbox, workload_user

SandboxMode = Literal["auto", "required", "off"]

log = logging.getLogger(__name__)


class Unisolated(PermanentError):
    """``--workload-sandbox required`` and no sandbox here."""


class Isolation:
    def __init__(self, sandbox: Sandbox | None, mode: SandboxMode = "auto") -> None:
        self.sandbox = sandbox if mode != "off" else None
        self.mode = mode

    @property
    def active(self) -> bool:
        return self.sandbox is not None and self.sandbox.usable

    def why_not(self) -> str:
        if self.sandbox is None:
            return "the server runs with --workload-sandbox off"
        return self.sandbox.problem or ""

    def announce(self) -> None:
        """Say in the server's log, once at start, how workloads will run (tries bubblewrap)."""
        if self.active:
            log.info("workloads run in a bubblewrap sandbox, as %s", self.user())
        elif self.sandbox is None:
            log.info("workloads run without a sandbox (--workload-sandbox off)")
        elif self.mode == "required":
            log.error("workloads will not start (--workload-sandbox required): %s", self.why_not())
        else:
            log.warning(
                "workloads run as the server's user, able to read its data: %s", self.why_not()
            )

    def check(self, status: dict[str, Any], generation: int | None) -> None:
        """Set the ``Isolated`` condition; raise :class:`Unisolated` if it must be and cannot."""
        if self.active:
            set_condition(
                status,
                "Isolated",
                True,
                "Sandboxed",
                "runs in a sandbox: it sees its own volumes and home, not the server's data "
                "or other workloads",
                generation,
            )
            return
        why = self.why_not()
        if self.mode == "required":
            set_condition(status, "Isolated", False, "NoSandbox", why, generation)
            raise Unisolated(f"--workload-sandbox is required and {why}")
        set_condition(
            status,
            "Isolated",
            False,
            "NoSandbox",
            f"runs as the server's user, able to read the server's data: {why}",
            generation,
        )

    def user(self) -> str:
        """The name of the user workloads run as: ``nobody`` in a root server's sandbox, else
        the server's (by its uid, not ``$USER``, which ``su`` keeps; the uid where the
        passwd file has no name for it)."""
        runs_as = workload_user() if self.active else None
        uid = os.geteuid() if runs_as is None else runs_as[0]
        try:
            return pwd.getpwuid(uid).pw_name
        except KeyError:
            return "nobody" if runs_as is not None else str(uid)

    def shows(self, path: str) -> bool:
        """Whether a workload can run the program at ``path``: in the sandbox, one not under a
        folder it hides, and one its user may execute."""
        if self.sandbox is None or not self.active:
            return True
        return self.sandbox.shows(Path(path))

    def command(self, argv: Sequence[str], confinement: Confinement) -> tuple[str, ...]:
        """``argv`` as it runs: in the sandbox when there is one."""
        if self.sandbox is not None and self.active:
            return self.sandbox.wrap(argv, confinement)
        return tuple(argv)
