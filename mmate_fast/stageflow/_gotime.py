"""Go's ``time.Time`` JSON form (RFC3339Nano) on integer nanoseconds since the Unix epoch, UTC.

StageFlow times travel with nanoseconds (``2026-11-27T13:11:25.29813257Z``); a float or a
``datetime`` would lose them, so the wire layer keeps ``int`` nanoseconds. Formatting is Go's
``time.Time.MarshalJSON`` for a UTC time: the fraction has its trailing zeros trimmed and is left
out when zero. Parsing accepts what Go's ``UnmarshalJSON`` accepts (a fraction of any length,
truncated to nanoseconds; ``Z`` or a ``+hh:mm`` offset) and converts to UTC.
"""
from __future__ import annotations

import datetime as _dt
import time

from mmate_fast._ext import COMPILED, load
from mmate_fast.errors import FlowWireError

_fs = load("flowstate")

#: Go's zero ``time.Time`` as it is written on the wire
ZERO_TIME = "0001-01-01T00:00:00Z"
#: the same instant in nanoseconds since the Unix epoch
ZERO_NS = -62135596800 * 1_000_000_000

_NS = 1_000_000_000
_EPOCH = _dt.datetime(1970, 1, 1)
_MIN_S = -62135596800          # 0001-01-01T00:00:00Z
_MAX_S = 253402300799          # 9999-12-31T23:59:59Z


def now_ns() -> int:
    """The current time in nanoseconds since the epoch (what Go's ``time.Now()`` prints)."""
    return time.time_ns()


#: seconds -> "YYYY-MM-DDTHH:MM:SS" and back: the times of one state mostly share their second
_TEXT: dict[int, str] = {}
_SECS: dict[str, int] = {}
_CACHE_MAX = 4096
#: ns -> its whole text, filled by format_time and by parse_time when the text is Go's own form:
#: a hop writes every earlier result's times again (state, events, the claimed outcome)
_FULL: dict[int, str] = {}
_FULL_MAX = 16384


def format_time(ns: int) -> str:
    """``ns`` (nanoseconds since the epoch) as Go writes a UTC ``time.Time`` in JSON, without the
    quotes. Raises FlowWireError outside years 0001-9999 (Go refuses to marshal those too)."""
    text = _FULL.get(ns)
    if text is not None:
        return text
    text = _format(ns)
    if len(_FULL) >= _FULL_MAX:
        _FULL.clear()
    _FULL[ns] = text
    return text


def _format(ns: int) -> str:
    secs, frac = divmod(ns, _NS)
    s = _TEXT.get(secs)
    if s is None:
        if not _MIN_S <= secs <= _MAX_S:
            raise FlowWireError(f"time {ns} ns is outside the years 0001-9999 that Go can write in JSON")
        d = _EPOCH + _dt.timedelta(seconds=secs)
        s = f"{d.year:04d}-{d.month:02d}-{d.day:02d}T{d.hour:02d}:{d.minute:02d}:{d.second:02d}"
        if len(_TEXT) >= _CACHE_MAX:
            _TEXT.clear()
        _TEXT[secs] = s
    if frac:
        return f"{s}.{frac:09d}".rstrip("0") + "Z"
    return s + "Z"


def parse_time(text: str) -> int:
    """An RFC 3339 time (Go's or any peer's) as nanoseconds since the epoch, UTC. Raises
    FlowWireError when it is not one (wrong type, layout, or a date that does not exist)."""
    if text.__class__ is str and len(text) >= 20 and text[-1] == "Z":  # fast path: Go's UTC form
        secs = _SECS.get(text[:19])
        if secs is not None:
            rest = text[19:]
            if rest == "Z":
                return secs * _NS
            frac = rest[1:-1]
            if rest[0] == "." and 0 < len(frac) <= 9 and frac.isascii() and frac.isdigit():
                ns = secs * _NS + int(frac) * _SCALE[len(frac)]
                if frac[-1] != "0":  # Go's own form (trailing zeros trimmed): format_time gives it back
                    if len(_FULL) >= _FULL_MAX:
                        _FULL.clear()
                    _FULL[ns] = text
                return ns
    return _parse(text)


_SCALE = [10 ** (9 - n) for n in range(10)]


def _parse(text: str) -> int:
    """The codec's parse (compiled or twin: one RFC 3339 grammar, one set of errors); a canonical UTC
    text (``T`` and ``Z``) also teaches the fast path its second."""
    ns = _fs.parse_time(text)
    if text[-1] in "Zz" and text[10] == "T":
        if len(_SECS) >= _CACHE_MAX:
            _SECS.clear()
        _SECS[text[:19]] = ns // _NS
    return ns


if COMPILED["flowstate"]:  # the compiled codec formats and parses Go's UTC form in C: no caches needed
    format_time = _fs.format_time
    parse_time = _fs.parse_time

__all__ = ["ZERO_NS", "ZERO_TIME", "format_time", "now_ns", "parse_time"]
