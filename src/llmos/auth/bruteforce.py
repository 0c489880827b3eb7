"""Slow down password guessing: lock a user name or a client address after failures.

After ``free_attempts`` consecutive failures, each further failure locks the
user (or address) out for ``base_lock`` seconds, doubling up to ``max_lock``.
While locked, even the right password is refused, so guessing cannot go on.
Counters live in memory: a restart forgets them, which only helps the owner.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field


@dataclass
class _Record:
    failures: int = 0
    locked_until: float = 0.0


@dataclass
class LoginThrottle:
    free_attempts: int = 5
    base_lock: float = 30.0
    max_lock: float = 900.0
    ip_free_attempts: int = 20
    _users: dict[str, _Record] = field(default_factory=dict)
    _addresses: dict[str, _Record] = field(default_factory=dict)

    def retry_after(self, user: str, address: str) -> float:
        """Seconds until ``user`` from ``address`` may try again (0 if now)."""
        now = time.monotonic()
        waits = [
            record.locked_until - now
            for record in (self._users.get(user), self._addresses.get(address))
            if record is not None
        ]
        return max([0.0, *waits])

    def failed(self, user: str, address: str) -> None:
        self._fail(self._users.setdefault(user, _Record()), self.free_attempts)
        self._fail(self._addresses.setdefault(address, _Record()), self.ip_free_attempts)

    def _fail(self, record: _Record, free: int) -> None:
        record.failures += 1
        if record.failures >= free:
            lock = min(self.base_lock * 2 ** (record.failures - free), self.max_lock)
            record.locked_until = time.monotonic() + lock

    def succeeded(self, user: str, address: str) -> None:
        self._users.pop(user, None)
        self._addresses.pop(address, None)
