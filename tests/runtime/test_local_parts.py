"""Unit tests of the local runtime's pure parts: backoff, names, logs, env, ports, probe."""

from __future__ import annotations

import asyncio
import socket
from pathlib import Path

import pytest

import llmos.runtime.local as local
from llmos.runtime.base import ReplicaSpec
from llmos.runtime.local.backoff import Backoff
from llmos.runtime.local.environ import render_command, render_env
from llmos.runtime.local.health import probe
from llmos.runtime.local.logs import LogBook, log_file_name, read_lines
from llmos.runtime.local.ports import PortPool, looks_like_port_clash
from llmos.runtime.local.runtime import spec_hash
from llmos.runtime.local.timing import Timing


def test_public_api() -> None:
    assert sorted(local.__all__) == ["LocalRuntime", "LocalRuntimeError", "Timing"]


def test_backoff_doubles_caps_and_detects_a_crash_loop() -> None:
    backoff = Backoff(
        Timing(backoff_initial=1, backoff_max=8, crashloop_exits=3, crashloop_window=300)
    )
    verdicts = [backoff.failed(t) for t in (0, 10, 20, 30, 40, 50)]
    assert [v.delay for v in verdicts] == [1, 2, 4, 8, 8, 8]
    assert [v.crash_loop for v in verdicts] == [False, False, True, True, True, True]
    # Failures spread wider than the window are not a loop.
    spread = Backoff(Timing(crashloop_window=300))
    assert [spread.failed(t).crash_loop for t in (0, 400, 800)] == [False, False, False]


def test_backoff_starts_over_after_a_long_ready_stretch() -> None:
    backoff = Backoff(Timing(backoff_initial=1, backoff_reset_after=60))
    assert [backoff.failed(t).delay for t in (0, 1, 2)] == [1, 2, 4]
    backoff.ready(10)
    assert backoff.failed(30).delay == 8, "20 s of Ready is not enough"
    backoff.ready(100)
    assert backoff.failed(200).delay == 1


def test_log_file_names_are_readable_and_one_to_one() -> None:
    assert log_file_name("modelservices/default/demo/0") == "modelservices_default_demo_0.log"
    names = {log_file_name(k) for k in ("a/b_c", "a_b/c", "a%2Fb", "../x", "a b")}
    assert len(names) == 5
    assert all("/" not in n and " " not in n for n in names)
    assert len(log_file_name("x" * 1000)) < 255


def test_log_book_rotates_and_reads_tails(tmp_path: Path) -> None:
    book = LogBook(tmp_path / "r.log", Timing(log_max_bytes=100, log_backups=2, memory_lines=5))
    for i in range(40):
        book.write(f"line {i:02d}\n".encode())  # 8 bytes each
    files = sorted(p.name for p in tmp_path.iterdir())
    assert files == ["r.log", "r.log.1", "r.log.2"]
    assert all(p.stat().st_size <= 100 for p in tmp_path.iterdir())
    assert read_lines(tmp_path / "r.log", 2) == ["line 38", "line 39"]
    assert book.last(3) == ("line 37", "line 38", "line 39")
    assert book.last(3, since=39) == ("line 39",)
    book.write(b"partial")
    assert read_lines(tmp_path / "r.log", 1) == ["partial"]
    assert read_lines(tmp_path / "r.log", 0) == []
    book.close()
    assert book.last(1) == ("partial",), "closing ends the last line"
    assert read_lines(tmp_path / "missing.log", None) == []


def test_log_book_splits_very_long_lines_and_decodes_badly_encoded_output(tmp_path: Path) -> None:
    book = LogBook(tmp_path / "r.log", Timing())
    book.write(b"x" * 200_000 + b"\n\xff\xfe ok\r\n")
    lines = book.last(10)
    assert [len(line) for line in lines[:-1]] == [65536, 65536, 65536, 3392]
    assert lines[-1] == "\ufffd\ufffd ok"


def test_a_slow_follower_is_cut_off_with_a_notice(tmp_path: Path) -> None:
    async def main() -> list[str]:
        book = LogBook(tmp_path / "r.log", Timing(follow_queue_lines=3))
        lines = book.lines(tail=0, follow=True)
        reader = asyncio.create_task(anext(lines))
        await asyncio.sleep(0)  # the reader subscribes
        for i in range(10):
            book.write(f"{i}\n".encode())
        got = [await reader] + [line async for line in lines]
        return got

    got = asyncio.run(main())
    assert got[:3] == ["0", "1", "2"]
    assert "fell too far behind" in got[-1]


def test_env_is_minimal_and_port_substituted() -> None:
    spec = ReplicaSpec(
        key="k/0",
        command=("serve", "--port={port}", "--host", "127.0.0.1"),
        env=(("URL", "http://127.0.0.1:{port}/v1"), ("PATH", "/opt/bin")),
    )
    parent = {
        "PATH": "/usr/bin",
        "HOME": "/h",
        "LC_ALL": "C",
        "AWS_SECRET": "x",
        "LLMOS_TOKEN": "t",
    }
    env = render_env(spec, 4242, parent)
    assert env == {
        "PATH": "/opt/bin",
        "HOME": "/h",
        "LC_ALL": "C",
        "PYTHONUNBUFFERED": "1",
        "URL": "http://127.0.0.1:4242/v1",
        "PORT": "4242",
    }
    assert render_command(spec, 4242) == ["serve", "--port=4242", "--host", "127.0.0.1"]
    assert render_command(spec, None)[1] == "--port={port}"
    assert "PORT" not in render_env(spec, None, parent)


def test_port_pool_prefers_the_previous_port_and_never_hands_out_one_twice() -> None:
    pool = PortPool()
    ports = {pool.allocate() for _ in range(20)}
    assert len(ports) == 20
    first = next(iter(ports))
    assert pool.allocate(first) == first
    moved = pool.allocate(first, reuse=False)
    assert moved != first and moved not in ports
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", moved))
        taken.listen()
        assert pool.allocate(moved) != moved


def test_port_clash_detection() -> None:
    assert looks_like_port_clash(("OSError: [Errno 98] Address already in use",))
    assert looks_like_port_clash(("error: couldn't bind HTTP server socket: EADDRINUSE",))
    assert not looks_like_port_clash(("listening on 127.0.0.1:8080",))


def test_probe_is_false_for_a_closed_port_and_for_non_http() -> None:
    async def main() -> tuple[bool, bool]:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            closed = sock.getsockname()[1]

        async def not_http(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            writer.write(b"SSH-2.0-nope\r\n")
            writer.close()

        server = await asyncio.start_server(not_http, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        async with server:
            return await probe(closed, "/health", 1), await probe(port, "/health", 1)

    assert asyncio.run(main()) == (False, False)


def test_spec_hash_tracks_every_field() -> None:
    spec = ReplicaSpec(key="k/0", command=("a",))
    assert spec_hash(spec) == spec_hash(ReplicaSpec(key="k/0", command=("a",)))
    assert spec_hash(spec) != spec_hash(ReplicaSpec(key="k/0", command=("a",), env=(("X", "1"),)))
    assert spec_hash(spec) != spec_hash(ReplicaSpec(key="k/0", command=("a",), cwd=Path("/tmp")))


@pytest.mark.parametrize("tail", [1, 5, 1000])
def test_read_lines_tail_across_chunk_boundaries(tmp_path: Path, tail: int) -> None:
    path = tmp_path / "big.log"
    path.write_bytes(b"".join(f"{i:06d}{'y' * 100}\n".encode() for i in range(3000)))
    lines = read_lines(path, tail)
    assert len(lines) == tail
    assert lines[-1].startswith("002999")
    assert lines[0].startswith(f"{3000 - tail:06d}")
