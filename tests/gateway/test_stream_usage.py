"""The usage chunk the gateway asked for on a client's behalf is kept from the client
(llmos.gateway.relay._without_usage), without a server: the pieces a stream arrives in."""

from __future__ import annotations

from llmos.gateway.relay import _without_usage

TEXT = b'data: {"choices": [{"delta": {"content": "hi"}}]}\n\n'
USAGE = b'data: {"id": "c1", "choices": [], "usage": {"prompt_tokens": 3}}\n\n'
DONE = b"data: [DONE]\n\n"


def test_the_usage_event_goes_and_the_rest_stays_as_it_was() -> None:
    assert _without_usage(TEXT + USAGE + DONE) == TEXT + DONE
    assert _without_usage(USAGE + DONE) == DONE
    assert _without_usage(USAGE) == b""


def test_an_event_with_choices_keeps_its_usage() -> None:
    both = b'data: {"choices": [{"delta": {}}], "usage": {"prompt_tokens": 3}}\n\n'
    assert _without_usage(both + DONE) == both + DONE


def test_an_event_split_between_pieces_goes_on_as_it_is() -> None:
    first, second = USAGE[:30], USAGE[30:] + DONE
    assert _without_usage(TEXT + first) == TEXT + first
    assert _without_usage(second) == second


def test_text_that_mentions_usage_is_not_an_event_to_drop() -> None:
    said = b'data: {"choices": [{"delta": {"content": "\\"usage\\""}}]}\n\n'
    assert _without_usage(said) == said
