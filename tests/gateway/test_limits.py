"""Token-bucket rate limits, without a server."""

from __future__ import annotations

import pytest

from llmos.gateway import limits
from llmos.gateway.limits import RateLimiter


def test_requests_per_minute(monkeypatch: pytest.MonkeyPatch) -> None:
    now = [1000.0]
    monkeypatch.setattr(limits.time, "monotonic", lambda: now[0])
    limiter = RateLimiter()
    assert limiter.admit("k", 3, None) == 0
    assert limiter.admit("k", 3, None) == 0
    assert limiter.admit("k", 3, None) == 0
    wait = limiter.admit("k", 3, None)
    assert wait == pytest.approx(20.0)  # one request refills every 60/3 s
    now[0] += 20.0
    assert limiter.admit("k", 3, None) == 0
    assert limiter.admit("other", 3, None) == 0, "keys do not share buckets"


def test_tokens_per_minute_are_charged_after_use(monkeypatch: pytest.MonkeyPatch) -> None:
    now = [1000.0]
    monkeypatch.setattr(limits.time, "monotonic", lambda: now[0])
    limiter = RateLimiter()
    assert limiter.admit("k", None, 600) == 0
    limiter.charge_tokens("k", 900)  # the answer was longer than the whole minute's budget
    wait = limiter.admit("k", None, 600)
    assert wait == pytest.approx(30.1, abs=0.2)  # 300 in debt + 1, at 10 tokens/s
    now[0] += 31
    assert limiter.admit("k", None, 600) == 0


def test_a_changed_limit_takes_effect() -> None:
    limiter = RateLimiter()
    assert limiter.admit("k", 1, None) == 0
    assert limiter.admit("k", 1, None) > 0
    assert limiter.admit("k", 100, None) == 0
