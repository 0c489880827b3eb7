"""Label selector parsing and matching."""

from __future__ import annotations

import pytest

from llmos._lib.errors import LLMOSError
from llmos.store.selector import parse_selector


@pytest.mark.parametrize(
    ("text", "labels", "matches"),
    [
        ("", {}, True),
        ("app=web", {"app": "web"}, True),
        ("app==web", {"app": "db"}, False),
        ("app!=web", {}, True),
        ("app in (web, db)", {"app": "db"}, True),
        ("app notin (web,db)", {"app": "db"}, False),
        ("gpu", {"gpu": ""}, True),
        ("!gpu", {"gpu": "1"}, False),
        ("app=web,tier in (a,b),!legacy", {"app": "web", "tier": "b"}, True),
        ("llmos.ai/user=bob", {"llmos.ai/user": "bob"}, True),
    ],
)
def test_selector_matches(text: str, labels: dict[str, str], matches: bool) -> None:
    assert parse_selector(text).matches(labels) is matches


@pytest.mark.parametrize("text", ["a in b", "=x", "a==b==c", "a in (x", "a b"])
def test_bad_selectors_say_which_part(text: str) -> None:
    with pytest.raises(LLMOSError, match="labelSelector part"):
        parse_selector(text)
