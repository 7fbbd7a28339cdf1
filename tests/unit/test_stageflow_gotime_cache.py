"""The cached fast paths of stageflow._gotime give exactly what the full conversion gives, and what
the fast path cannot read goes the full way (and fails the same way)."""
from __future__ import annotations

import pytest

from mmate_fast.errors import FlowWireError
from mmate_fast.stageflow import _gotime

TEXTS = ["2026-11-27T13:11:25.29813257Z", "2026-11-27T13:11:25Z", "2026-11-27T13:11:25.000000001Z",
         "2026-11-27T13:11:25.1234567891Z", "2026-11-27T15:11:25.5+02:00", "2026-11-27t13:11:25.5z",
         "0001-01-01T00:00:00Z", "9999-12-31T23:59:59.999999999Z"]


@pytest.mark.parametrize("text", TEXTS)
def test_parse_is_the_same_cached_or_not(text: str) -> None:
    _gotime._SECS.clear()
    slow = _gotime._parse(text)
    assert _gotime.parse_time(text) == slow  # cached now where it could be
    assert _gotime.parse_time(text) == slow


@pytest.mark.parametrize("bad", ["2026-11-27T13:11:25.Z", "2026-11-27T13:11:25.12a4Z", "2026-11-27T13:11:25.\u0661Z",
                                 "2026-02-30T13:11:25Z", "", "Z"])
def test_what_the_fast_path_cannot_read_fails_as_before(bad: str) -> None:
    _gotime.parse_time("2026-11-27T13:11:25Z")  # the second is cached
    with pytest.raises(FlowWireError):
        _gotime.parse_time(bad)


def test_format_round_trips_and_the_caches_stay_bounded() -> None:
    _gotime._TEXT.clear()
    _gotime._FULL.clear()
    base = 1_795_785_085_298_132_570
    for i in range(max(_gotime._CACHE_MAX, _gotime._FULL_MAX) + 10):
        ns = base + i * 1_000_000_001
        assert _gotime.parse_time(_gotime.format_time(ns)) == ns
    assert len(_gotime._TEXT) <= _gotime._CACHE_MAX and len(_gotime._SECS) <= _gotime._CACHE_MAX
    assert len(_gotime._FULL) <= _gotime._FULL_MAX
    assert _gotime.format_time(base - base % 1_000_000_000) == "2026-11-27T13:11:25Z"
    with pytest.raises(FlowWireError):
        _gotime.format_time(_gotime.ZERO_NS - 1_000_000_000)


@pytest.mark.parametrize("text", [*TEXTS, "2026-11-27T13:11:25.50Z", "2026-11-27T13:11:25.000000000Z"])
def test_format_after_parse_is_gos_form_whatever_was_parsed(text: str) -> None:
    """The whole-text cache learns only Go's own form from parse_time: a time read in another form
    (trailing zeros, an offset, lower case) is still written as Go writes it."""
    _gotime._FULL.clear()
    _gotime._SECS.clear()
    ns = _gotime._parse(text)
    want = _gotime._format(ns)
    for _ in range(2):  # the second parse takes the fast path
        assert _gotime.parse_time(text) == ns
        assert _gotime.format_time(ns) == want
    assert all(_gotime._format(k) == v for k, v in _gotime._FULL.items())
