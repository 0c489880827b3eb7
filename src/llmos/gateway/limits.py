"""Per-API-key rate limits: requests and tokens per minute, as token buckets.

A bucket holds up to one minute's allowance and refills continuously. The
request bucket is charged before a request; the token bucket is checked
before (it must not be in debt) and charged after, with the tokens used.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field


@dataclass
class Bucket:
    per_minute: float
    level: float = field(init=False)
    stamp: float = field(default_factory=lambda: time.monotonic())

    def __post_init__(self) -> None:
        self.level = self.per_minute

    def refill(self) -> None:
        now = time.monotonic()
        self.level = min(self.per_minute, self.level + (now - self.stamp) * self.per_minute / 60)
        self.stamp = now

    def wait_for(self, amount: float) -> float:
        """Seconds until ``amount`` is available (0 when it is now)."""
        self.refill()
        if self.level >= amount:
            return 0.0
        return (amount - self.level) * 60 / self.per_minute


class RateLimiter:
    def __init__(self) -> None:
        self._requests: dict[str, Bucket] = {}
        self._tokens: dict[str, Bucket] = {}

    @staticmethod
    def _bucket(buckets: dict[str, Bucket], key: str, per_minute: int) -> Bucket:
        bucket = buckets.get(key)
        if bucket is None or bucket.per_minute != per_minute:
            bucket = buckets[key] = Bucket(per_minute)
        return bucket

    def admit(self, key: str, rpm: int | None, tpm: int | None) -> float:
        """Charge one request; return 0 if admitted, else seconds to wait."""
        requests = self._bucket(self._requests, key, rpm) if rpm else None
        if requests is not None and (wait := requests.wait_for(1)):
            return wait
        if tpm and (wait := self._bucket(self._tokens, key, tpm).wait_for(1)):
            return wait
        if requests is not None:
            requests.level -= 1
        return 0.0

    def charge_tokens(self, key: str, used: int) -> None:
        bucket = self._tokens.get(key)
        if bucket is not None:
            bucket.refill()
            bucket.level -= used
