"""Idle culling's clock, shared by the embedded and cluster-mode notebook reconcilers."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime
from typing import Any

from llmos._lib import timefmt
from llmos.controllers.notebook_idle import (
    Activity,
    IdleClock,
    check_every,
    fold,
    record_every,
)
from llmos.resources.meta import get_condition


class Events:
    def __init__(self) -> None:
        self.recorded: list[tuple[str, str]] = []

    async def record(self, obj: dict[str, Any], reason: str, message: str, type: str = "") -> None:
        self.recorded.append((reason, message))


def notebook(**spec: Any) -> dict[str, Any]:
    meta = {"namespace": "team", "name": "lab", "uid": "u1", "generation": 2}
    return {"kind": "Notebook", "metadata": meta, "spec": spec}


def ago(seconds: float) -> str:
    return timefmt.rfc3339(datetime.fromtimestamp(time.time() - seconds, UTC))


def test_checks_and_writes_come_often_enough_for_the_timeout() -> None:
    assert check_every(0.05) == 1.5  # twice per timeout
    assert check_every(600) == 60.0  # at least once a minute
    assert record_every(0.1) == 1.5 and record_every(600) == 30.0


def test_the_status_only_moves_forward() -> None:
    status: dict[str, Any] = {}
    assert not fold(status, None)
    assert fold(status, 1_000_000.0)
    assert status["lastActivityTime"] == "1970-01-12T13:46:40Z"
    assert not fold(status, 999_000.0)
    assert status["lastActivityTime"] == "1970-01-12T13:46:40Z"


def test_a_notebook_is_overdue_after_its_timeout_counted_from_its_last_use() -> None:
    clock = IdleClock(Activity(), Events())  # type: ignore[arg-type]
    nb = notebook(idleTimeoutMinutes=1)
    assert not clock.overdue(nb, {})  # never used: nothing to count from
    assert not clock.overdue(nb, {"lastActivityTime": ago(50)})
    assert clock.overdue(nb, {"lastActivityTime": ago(70)})
    assert not clock.overdue(notebook(), {"lastActivityTime": ago(7000)})  # no timeout
    clock.activity.touch("team", "lab")  # traffic this server saw counts too
    assert not clock.overdue(nb, {"lastActivityTime": ago(70)})


def test_shared_activity_is_waited_for_as_long_as_it_may_be_late() -> None:
    # Other replicas write their traffic into the status up to record_every(1) = 15 s late.
    clock = IdleClock(Activity(), Events(), shared=True)  # type: ignore[arg-type]
    nb = notebook(idleTimeoutMinutes=1)
    assert not clock.overdue(nb, {"lastActivityTime": ago(70)})
    assert clock.overdue(nb, {"lastActivityTime": ago(80)})


def test_culling_says_why_in_the_status_and_an_event() -> None:
    events = Events()
    clock = IdleClock(Activity(), events)  # type: ignore[arg-type]
    status: dict[str, Any] = {"phase": "Ready"}
    asyncio.run(clock.cull(notebook(idleTimeoutMinutes=0.5), status))
    message = "stopped after 0.5 idle minutes; opening /notebooks/team/lab/ starts it again"
    assert status["phase"] == "Idle" and status["message"] == message
    ready = get_condition({"status": status}, "Ready")
    assert ready is not None
    assert (ready["status"], ready["reason"], ready["observedGeneration"]) == ("False", "Idle", 2)
    assert events.recorded == [("Culled", message)]


def test_a_time_a_user_wrote_that_does_not_parse_counts_as_none() -> None:
    clock = IdleClock(Activity(), Events())  # type: ignore[arg-type]
    nb = notebook(idleTimeoutMinutes=1)
    for junk in ("yesterday", "", 42, "2026-13-45T99:00:00Z"):
        status: dict[str, Any] = {"lastActivityTime": junk}
        assert not clock.overdue(nb, status)  # not an error either
        assert fold(status, 1_000_000.0)  # replaced by a real time
        assert status["lastActivityTime"] == "1970-01-12T13:46:40Z"


def test_a_ready_notebook_without_a_readable_clock_starts_one() -> None:
    clock = IdleClock(Activity(), Events())  # type: ignore[arg-type]
    kept = {"lastActivityTime": ago(50)}
    clock.ready(kept, was_ready=True)  # ready all along, with a clock: kept
    assert timefmt.seconds_or_none(kept["lastActivityTime"]) < time.time() - 40  # type: ignore[operator]
    for status in ({}, {"lastActivityTime": "garbage"}):
        # Ready before this server kept a clock (pods outlive an upgrade): from now.
        clock.ready(status, was_ready=True)
        assert abs(timefmt.seconds_or_none(status["lastActivityTime"]) - time.time()) < 5  # type: ignore[operator]
    turned = {"lastActivityTime": ago(500)}
    clock.ready(turned, was_ready=False)  # turning ready is use
    assert abs(timefmt.seconds_or_none(turned["lastActivityTime"]) - time.time()) < 5  # type: ignore[operator]
