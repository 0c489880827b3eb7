"""Restart pacing for one replica: exponential backoff and crash-loop detection.

Pure bookkeeping, used by the supervisor; time comes in as arguments, so it is
unit-tested without processes. The delay doubles per failure in a row, from
``Timing.backoff_initial`` up to ``backoff_max``, and starts over once the
replica has stayed Ready for ``backoff_reset_after``. Failures are also counted
in a sliding ``crashloop_window``; ``crashloop_exits`` of them mean a crash loop.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

from llmos.runtime.local.timing import Timing

__all__ = ["Backoff", "Verdict"]


@dataclass(frozen=True)
class Verdict:
    """What to do after a failure."""

    delay: float
    recent_failures: int  # within the crash-loop window, this one included
    crash_loop: bool


class Backoff:
    """Failure history of one replica."""

    def __init__(self, timing: Timing) -> None:
        self._timing = timing
        self._in_a_row = 0
        self._times: deque[float] = deque()
        self._ready_since: float | None = None

    def ready(self, now: float) -> None:
        """The replica became Ready at ``now``."""
        if self._ready_since is None:
            self._ready_since = now

    def not_ready(self, now: float) -> None:
        """The replica stopped being Ready; a long enough Ready stretch wipes the slate."""
        if (
            self._ready_since is not None
            and now - self._ready_since >= self._timing.backoff_reset_after
        ):
            self._in_a_row = 0
        self._ready_since = None

    def failed(self, now: float) -> Verdict:
        """Record a failure (exit, failed start, failed health) at ``now``."""
        timing = self._timing
        self.not_ready(now)
        self._in_a_row += 1
        self._times.append(now)
        while now - self._times[0] > timing.crashloop_window:
            self._times.popleft()
        delay = min(timing.backoff_initial * 2 ** (self._in_a_row - 1), timing.backoff_max)
        recent = len(self._times)
        return Verdict(delay, recent, recent >= timing.crashloop_exits)
