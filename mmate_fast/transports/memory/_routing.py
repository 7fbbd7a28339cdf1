"""Routing-key and header matching of the in-memory broker, exactly as RabbitMQ 3.10 does it.

Topic keys and patterns are split on ``.``; the empty string is zero words (so ``*`` does not match
``""`` but ``#`` does), and ``a..b`` has an empty middle word. ``*`` is exactly one word, ``#`` zero
or more. Headers bindings use ``x-match`` = ``all`` (default) / ``any`` (plus ``all-with-x`` /
``any-with-x``); binding keys starting with ``x-`` are ignored unless a ``-with-x`` mode is used.
"""
from __future__ import annotations

from collections.abc import Mapping
from functools import lru_cache
from typing import Any


def split_words(key: str) -> tuple[str, ...]:
    """Words of a routing key or pattern; ``""`` has none."""
    return tuple(key.split(".")) if key else ()


def _match_words(pattern: tuple[str, ...], words: tuple[str, ...], pi: int, wi: int) -> bool:
    np, nw = len(pattern), len(words)
    while pi < np:
        p = pattern[pi]
        if p == "#":
            while pi + 1 < np and pattern[pi + 1] == "#":
                pi += 1
            if pi + 1 == np:
                return True
            return any(_match_words(pattern, words, pi + 1, j) for j in range(wi, nw + 1))
        if wi == nw or (p != "*" and p != words[wi]):
            return False
        pi += 1
        wi += 1
    return wi == nw


@lru_cache(maxsize=65536)
def topic_matches(pattern: str, routing_key: str) -> bool:
    """True when ``routing_key`` matches the topic binding ``pattern``."""
    if pattern == routing_key or pattern == "#":
        return True
    return _match_words(split_words(pattern), split_words(routing_key), 0, 0)


def _same_value(bound: Any, given: Any) -> bool:
    if bound is None:  # a void binding value only asks for the key to be present
        return True
    if isinstance(bound, bool) or isinstance(given, bool):
        return isinstance(bound, bool) and isinstance(given, bool) and bound == given
    if isinstance(bound, (int, float)) and isinstance(given, (int, float)):
        return bound == given
    return type(bound) is type(given) and bool(bound == given)


def headers_match(binding_args: Mapping[str, Any] | None, headers: Mapping[str, Any] | None) -> bool:
    """True when a message with ``headers`` matches a headers-exchange binding with ``binding_args``."""
    args = binding_args or {}
    mode = args.get("x-match", "all")
    if isinstance(mode, bytes):
        mode = mode.decode()
    with_x = mode in ("all-with-x", "any-with-x")
    want_any = mode in ("any", "any-with-x")
    hdrs = headers or {}
    seen = False
    for key, bound in args.items():
        if key == "x-match" or (not with_x and key.startswith("x-")):
            continue
        seen = True
        ok = key in hdrs and _same_value(bound, hdrs[key])
        if want_any and ok:
            return True
        if not want_any and not ok:
            return False
    del seen  # no matchable keys: ``all`` matches everything, ``any`` nothing
    return not want_any


__all__ = ["headers_match", "split_words", "topic_matches"]
