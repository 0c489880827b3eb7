"""The per-key usage totals outlive a restart: the ledger file in the data dir."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

from prometheus_client import CollectorRegistry

from llmos.gateway.usage import Usage


def test_totals_are_saved_when_they_change_and_read_back(tmp_path: Path) -> None:
    ledger = tmp_path / "usage.json"
    usage = Usage(CollectorRegistry(), ledger)
    assert usage.save() is False and not ledger.exists()  # nothing to save yet
    usage.record("team/chat", "alice", "key-1", 200, 0.5, 10, 20)
    usage.record("team/chat", "alice", "key-1", 200, 0.5, 5, 7)
    usage.record("team/chat", "bob", "session", 499, 0.5, 3, 1)
    usage.record("team/chat", "bob", "session", 503, 0.1, 0, 0)  # an error: no tokens
    assert usage.save() is True
    assert usage.save() is False  # unchanged since
    assert not list(tmp_path.glob("*.part"))
    again = Usage(CollectorRegistry(), ledger)
    assert again.report() == usage.report()
    assert [(r["user"], r["requests"], r["totalTokens"]) for r in again.report()] == [
        ("alice", 2, 42),
        ("bob", 1, 4),
    ]
    again.record("team/chat", "alice", "key-1", 200, 0.5, 1, 1)
    assert again.save() is True
    assert json.loads(ledger.read_text())["items"][0]["totalTokens"] == 44


def test_an_unreadable_ledger_is_kept_aside_and_counting_starts_over(tmp_path: Path) -> None:
    ledger = tmp_path / "usage.json"
    ledger.write_text('{"items": [{"user": "alice"')  # cut short
    usage = Usage(CollectorRegistry(), ledger)
    assert usage.report() == []
    assert (tmp_path / "usage.json.unreadable").read_text().startswith('{"items"')
    usage.record("team/chat", "alice", "key-1", 200, 0.5, 1, 2)
    assert usage.save() and json.loads(ledger.read_text())["items"][0]["totalTokens"] == 3


def test_saved_periodically_while_the_server_runs(tmp_path: Path) -> None:
    ledger = tmp_path / "usage.json"
    usage = Usage(CollectorRegistry(), ledger)

    async def main() -> None:
        saving = asyncio.create_task(usage.keep_saved(0.01))
        usage.record("team/chat", "alice", "key-1", 200, 0.5, 1, 2)
        async with asyncio.timeout(5):
            while not ledger.exists():
                await asyncio.sleep(0.01)
        saving.cancel()

    asyncio.run(main())
    assert json.loads(ledger.read_text())["items"][0]["totalTokens"] == 3
