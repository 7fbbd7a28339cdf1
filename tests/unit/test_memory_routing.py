"""Topic and headers matching of the in-memory broker (expected values checked against RabbitMQ 3.10)."""
from __future__ import annotations

import pytest

from mmate_fast.transports.memory._routing import headers_match, split_words, topic_matches


@pytest.mark.parametrize(("pattern", "key", "expected"), [
    ("#", "", True), ("#", "a.b.c", True), ("*", "", False), ("*", "a", True), ("*", "a.b", False),
    ("", "", True), ("", "a", False), ("a.#", "a", True), ("a.#", "a.b.c", True), ("a.#", "b", False),
    ("#.b", "b", True), ("#.b", "x.y.b", True), ("#.b", "b.x", False), ("a.#.b", "a.b", True),
    ("a.#.b", "a.x.y.b", True), ("a.#.b", "a.x.c", False), ("a.*", "a.", True), ("a.*", "a", False),
    ("a.*.b", "a..b", True), ("a..b", "a..b", True), ("a..b", "a.x.b", False), ("*.*", ".a", True),
    ("#.#", "", True), ("a.#.#.b", "a.b", True), ("#.a.#", "x.a.y", True), ("#.a.#", "x.y", False),
])
def test_topic_matches(pattern: str, key: str, expected: bool) -> None:
    assert topic_matches(pattern, key) is expected


def test_split_words() -> None:
    assert split_words("") == ()
    assert split_words("a..b") == ("a", "", "b")


@pytest.mark.parametrize(("args", "headers", "expected"), [
    ({"x-match": "all", "a": 1, "b": "s"}, {"a": 1, "b": "s", "c": 3}, True),
    ({"x-match": "all", "a": 1, "b": "s"}, {"a": 1}, False),
    ({"x-match": "any", "a": 1, "b": "s"}, {"a": 1}, True),
    ({"x-match": "any", "a": 1, "b": "s"}, {"a": 2}, False),
    ({"x-match": "any", "a": 1}, {"a": "1"}, False),
    ({}, None, True),
    ({"x-match": "any"}, {"a": 1}, False),
    ({"x-match": "all", "x-k": 1}, {}, True),
    ({"x-match": "all-with-x", "x-k": 1}, {}, False),
    ({"x-match": "any-with-x", "x-k": 1}, {"x-k": 1}, True),
    ({"a": True}, {"a": 1}, False),
    ({"a": None}, {"a": "anything"}, True),
])
def test_headers_match(args: dict[str, object], headers: dict[str, object] | None, expected: bool) -> None:
    assert headers_match(args, headers) is expected
