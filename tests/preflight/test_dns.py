"""The DNS-1123 helpers in llmos._lib.dns that the hostname check uses."""

from __future__ import annotations

import pytest

from llmos._lib.dns import dns1123_label_problem, dns1123_subdomain_problem, is_dns1123_subdomain


@pytest.mark.parametrize("name", ["a", "node-1", "gpu01.example.com", "1node", "a" * 63])
def test_valid_names(name: str) -> None:
    assert is_dns1123_subdomain(name)


@pytest.mark.parametrize(
    ("name", "problem"),
    [
        ("", "empty"),
        ("Node", "upper-case"),
        ("node_1", "lower-case letters, digits"),
        ("node-", "start and end"),
        ("a..b", "empty"),
        ("a" * 64, "63"),
        (("a" * 60 + ".") * 5, "253"),
    ],
)
def test_invalid_names_say_why(name: str, problem: str) -> None:
    message = dns1123_subdomain_problem(name)
    assert message is not None and problem in message


def test_label_rejects_dots() -> None:
    assert dns1123_label_problem("a.b") is not None
