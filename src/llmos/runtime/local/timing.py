"""Timing and size knobs of the local runtime, with production defaults.

``LocalRuntime`` takes a :class:`Timing`; tests pass small values so that
backoff, crash loops and grace periods play out in well under a second.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["Timing"]

MIB = 1024 * 1024


@dataclass(frozen=True)
class Timing:
    """How the supervisor paces restarts, probes and logs."""

    backoff_initial: float = 1.0
    """Delay before the first restart after a failure; doubles per failure in a row."""

    backoff_max: float = 60.0
    """Upper bound of the restart delay."""

    backoff_reset_after: float = 60.0
    """A replica Ready (or, without a health check, running) this long starts its backoff over."""

    crashloop_exits: int = 3
    """This many failures within ``crashloop_window`` make the phase CrashLoop instead of BackOff."""

    crashloop_window: float = 300.0
    """The window, in seconds, for ``crashloop_exits``."""

    unhealthy_restart_after: float = 30.0
    """A Ready replica that turned Unhealthy is restarted if it is still failing this long after."""

    startup_probe_period: float = 0.2
    """Probe period while starting (capped by the check's own period), so readiness shows early."""

    port_retries: int = 3
    """Immediate, uncounted restarts on a new port after "address already in use" (until Ready)."""

    log_drain_seconds: float = 1.0
    """After a process exits, how long to keep reading output its leftover children may hold open."""

    oom_poll_seconds: float = 2.0
    """How often a running replica's own cgroup is read for OOM kills it may live through."""

    oom_settle_seconds: float = 1.0
    """After such a kill, how long the replica must run on for it to count as lived through
    (an exit in that time is reported as the exit's cause instead)."""

    survivor_grace: float = 5.0
    """On start, how long survivors of a previous server get between SIGTERM and SIGKILL."""

    log_max_bytes: int = 10 * MIB
    """A replica's log file is rotated when it would grow past this size."""

    log_backups: int = 3
    """Rotated log files kept: ``<name>.log.1`` (newest) to ``<name>.log.<log_backups>``."""

    memory_lines: int = 1000
    """Lines of output each replica keeps in memory."""

    last_lines: int = 20
    """Lines copied into ``ReplicaStatus.last_lines`` when a replica fails."""

    follow_queue_lines: int = 10_000
    """A ``logs(follow=True)`` reader this far behind is cut off (with a final notice line)."""
