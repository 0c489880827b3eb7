"""Logs outlive remove() and go with forget_logs(): every rotation, only the owner's, never a
running replica's; a new replica of the same key then starts with an empty log."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from llmos.runtime.local import LocalRuntime, LocalRuntimeError
from llmos.runtime.local.logfiles import delete_logs
from llmos.runtime.local.logs import log_file_name

from .helpers import printed, run, script_spec, until

DEMO = "modelservices/default/demo/"


def plant(log_dir: Path, key: str, *rotations: int) -> list[Path]:
    """A log file for ``key`` (and the rotations named), as a replica of it would leave."""
    log_dir.mkdir(parents=True, exist_ok=True)
    name = log_file_name(key)
    paths = [log_dir / name, *(log_dir / f"{name}.{n}" for n in rotations)]
    for path in paths:
        path.write_text(f"a line of {key}\n")
    return paths


def names(log_dir: Path) -> set[str]:
    return {path.name for path in log_dir.iterdir()}


def test_an_owners_logs_go_with_every_rotation_and_no_one_elses(tmp_path: Path) -> None:
    logs = tmp_path / "logs"
    gone = [
        *plant(logs, DEMO + "0", 1, 3),
        *plant(logs, DEMO + "1"),  # scaled away earlier
    ]
    stays = [
        *plant(logs, "modelservices/default/demo2/0", 1),  # a name that starts alike
        *plant(logs, "modelservices/default/demo_/0"),  # _ is escaped: not a /
        *plant(logs, "notebooks/default/demo/0"),
        *plant(logs, "modelservices/default/demo/running"),
    ]
    (logs / "modelservices_default_demo_0.log.bak").write_text("not a log of ours")
    (logs / "modelservices_default_demo_9.log").mkdir()

    deleted = delete_logs(logs, DEMO, spare=[DEMO + "running"])

    assert sorted(deleted) == [log_file_name(DEMO + "0"), log_file_name(DEMO + "1")]
    assert not any(path.exists() for path in gone)
    assert all(path.exists() for path in stays)
    assert {"modelservices_default_demo_0.log.bak", "modelservices_default_demo_9.log"} <= names(
        logs
    )
    assert delete_logs(tmp_path / "none", DEMO) == []


def test_keep_spares_the_prefixes_of_objects_that_are_there(tmp_path: Path) -> None:
    logs = tmp_path / "logs"
    plant(logs, "modelservices/default/live/0", 1)
    plant(logs, "modelservices/default/gone/0", 2)
    plant(logs, "modelservices/other/live/3")
    plant(logs, "notebooks/default/gone/0")

    deleted = delete_logs(logs, "modelservices/", keep=["modelservices/default/live/"])

    assert sorted(deleted) == [
        "modelservices_default_gone_0.log",
        "modelservices_other_live_3.log",
    ]
    assert names(logs) == {
        "modelservices_default_live_0.log",
        "modelservices_default_live_0.log.1",
        "notebooks_default_gone_0.log",
    }


def test_a_shortened_name_is_deleted_only_when_it_can_tell(tmp_path: Path) -> None:
    logs = tmp_path / "logs"
    long_prefix = f"modelservices/default/{'x' * 250}/"
    [long_file] = plant(logs, long_prefix + "0")
    assert "~" in long_file.name  # shortened, with a digest

    # Its first 180 characters cannot tell a prefix of 270 from another one like it.
    assert delete_logs(logs, long_prefix) == []
    assert delete_logs(logs, "modelservices/", keep=[long_prefix]) == []
    assert delete_logs(logs, "modelservices/", keep=[long_prefix[:-2] + "y/"]) == []
    # Known by key, it can.
    assert delete_logs(logs, long_prefix, known=[long_prefix + "0"]) == [long_file.name]
    plant(logs, long_prefix + "0")
    # And a short prefix is within what the name shows.
    assert delete_logs(logs, "modelservices/default/") == [long_file.name]
    assert names(logs) == set()


SAY = "print({word!r}, flush=True); import time; time.sleep(600)"


async def all_lines(runtime: LocalRuntime, key: str) -> list[str]:
    return [line async for line in runtime.logs(key)]


@pytest.mark.usefixtures("event_loop_kind")
def test_a_deleted_owner_made_again_starts_with_only_its_own_logs(tmp_path: Path) -> None:
    key = DEMO + "0"
    log_dir = tmp_path / "logs"

    async def body(runtime: LocalRuntime) -> None:
        await runtime.ensure(script_spec(key, SAY.format(word="first-run")))
        await asyncio.wait_for(printed(runtime, key, "first-run"), 20)
        # remove() is a scale-down or a stop: the log stays, and the same key writes on.
        await runtime.remove(key)
        assert await all_lines(runtime, key) == ["first-run"]
        await runtime.ensure(script_spec(key, SAY.format(word="scaled-up-again")))
        await asyncio.wait_for(printed(runtime, key, "scaled-up-again"), 20)
        assert await all_lines(runtime, key) == ["first-run", "scaled-up-again"]
        await runtime.remove(key)
        plant(log_dir, DEMO + "1", 1)  # a replica scaled away earlier, rotated once

        assert runtime.forget_logs(DEMO) == 2
        assert not list(log_dir.iterdir())
        with pytest.raises(LocalRuntimeError, match="no logs for it") as raised:
            runtime.logs(key)
        assert raised.value.reason == "NotFound"

        await runtime.ensure(script_spec(key, SAY.format(word="made-again")))
        await asyncio.wait_for(printed(runtime, key, "made-again"), 20)
        assert await all_lines(runtime, key) == ["made-again"]

    run(tmp_path, body)


@pytest.mark.usefixtures("event_loop_kind")
def test_a_running_replica_keeps_its_logs_and_its_follower_ends_cleanly(tmp_path: Path) -> None:
    running, stopped = DEMO + "0", DEMO + "1"
    long_key = f"modelservices/default/{'y' * 250}/0"

    async def body(runtime: LocalRuntime) -> None:
        for key, word in ((running, "hello 0"), (stopped, "hello 1"), (long_key, "hello y")):
            await runtime.ensure(script_spec(key, SAY.format(word=word)))
            await asyncio.wait_for(printed(runtime, key, word), 20)
        await runtime.remove(stopped)
        await runtime.remove(long_key)
        lines: list[str] = []

        async def follow() -> None:
            async for line in runtime.logs(running, follow=True):
                lines.append(line)

        follower = asyncio.create_task(follow())
        await until(lambda: lines == ["hello 0"], "the follower's backlog")

        assert runtime.forget_logs(DEMO) == 1  # the stopped one only
        assert runtime.forget_logs(long_key.rsplit("/", 1)[0] + "/") == 1  # known by key
        assert names(tmp_path / "logs") == {log_file_name(running)}
        assert not follower.done()

        await runtime.remove(running)  # the object is deleted: its replica goes first
        await asyncio.wait_for(follower, 10)  # ended, not failed
        assert runtime.forget_logs(DEMO) == 1
        assert names(tmp_path / "logs") == set()
        assert lines == ["hello 0"]
        with pytest.raises(LocalRuntimeError, match="needs a key prefix"):
            runtime.forget_logs("")

    run(tmp_path, body)
