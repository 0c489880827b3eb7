"""Run the process-level runtime tests on both event loops: asyncio's and uvloop's."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import uvloop

from . import helpers


@pytest.fixture(params=["asyncio", "uvloop"])
def event_loop_kind(request: pytest.FixtureRequest) -> Iterator[str]:
    helpers.LOOP_FACTORY[0] = uvloop.new_event_loop if request.param == "uvloop" else None
    yield request.param
    helpers.LOOP_FACTORY[0] = None
