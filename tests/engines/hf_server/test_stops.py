"""Stop strings in streamed text: cut at the first one, hold back what may start one."""

from __future__ import annotations

import pytest

from llmos.engines.hf_server.stops import StopScanner


def scan(pieces: list[str], stops: list[str]) -> tuple[list[str], bool]:
    scanner = StopScanner(stops)
    sent = [scanner.feed(p) for p in pieces]
    if not scanner.stopped:
        sent.append(scanner.flush())
    return [s for s in sent if s], scanner.stopped


def test_no_stops_passes_everything_through() -> None:
    assert scan(["a ", "b ", "c"], []) == (["a ", "b ", "c"], False)


def test_cut_before_the_stop_string() -> None:
    assert scan(["one two ", "STOP three"], ["STOP"]) == (["one two "], True)


@pytest.mark.parametrize(
    "pieces", [["ab", "cEN", "Dxyz"], ["abcE", "ND"], ["a", "b", "c", "E", "N", "D", "x"]]
)
def test_a_stop_split_across_pieces_is_found(pieces: list[str]) -> None:
    sent, stopped = scan(pieces, ["END"])
    assert stopped and "".join(sent) == "abc"


def test_a_false_start_is_released() -> None:
    scanner = StopScanner(["END"])
    assert scanner.feed("abcE") == "abc"
    assert scanner.feed("x") == "Ex"
    assert scanner.feed("EN") == ""
    assert scanner.flush() == "EN"


def test_the_earliest_of_several_stops_wins() -> None:
    assert scan(["x ## y !! z"], ["!!", "##"]) == (["x "], True)


def test_nothing_is_sent_after_a_stop() -> None:
    scanner = StopScanner(["."])
    assert scanner.feed("a.b") == "a"
    assert scanner.feed("more") == ""
