"""Strict readers of decoded JSON values for the StageFlow codecs: Go's types, Go's zero value for
a missing key or ``null``, and ``Bad`` (turned into FlowStateError / FlowWireError by the caller,
who knows what was being read) for a value of the wrong JSON type."""
from __future__ import annotations

import datetime
from typing import Any

from mmate_fast._ext import load
from mmate_fast.errors import FlowWireError
from mmate_fast.stageflow._gotime import ZERO_NS, parse_time

_env = load("envelope")


class Bad(Exception):
    """A key of the wrong type; the message names the key."""


def show(v: Any) -> str:
    """Type and start of a value, for error messages."""
    r = repr(v)
    return f"{type(v).__name__} {r[:60]}{'...' if len(r) > 60 else ''}"


def r_str(obj: dict[str, Any], key: str) -> str:
    v = obj.get(key)
    if v.__class__ is str:
        return v
    if v is None:
        return ""
    raise Bad(f"{key}: expected a string, got {show(v)}")


def r_opt_str(obj: dict[str, Any], key: str) -> str | None:
    """A string whose empty value is None (Go's omitempty strings)."""
    v = obj.get(key)
    if v.__class__ is str:
        return v or None
    if v is None:
        return None
    raise Bad(f"{key}: expected a string, got {show(v)}")


def r_int(obj: dict[str, Any], key: str) -> int:
    v = obj.get(key)
    if v.__class__ is int:
        return v
    if v is None:
        return 0
    raise Bad(f"{key}: expected an integer, got {show(v)}")


def r_bool(obj: dict[str, Any], key: str) -> bool:
    v = obj.get(key)
    if v.__class__ is bool:
        return v
    if v is None:
        return False
    raise Bad(f"{key}: expected true or false, got {show(v)}")


def r_time(obj: dict[str, Any], key: str) -> int:
    v = obj.get(key)
    if v is None:
        return ZERO_NS
    try:
        return parse_time(v)
    except FlowWireError as exc:
        raise Bad(f"{key}: {exc}") from None


def r_opt_time(obj: dict[str, Any], key: str) -> int | None:
    return None if obj.get(key) is None else r_time(obj, key)


def r_opt_dict(obj: dict[str, Any], key: str) -> dict[str, Any] | None:
    v = obj.get(key)
    if v is None or v.__class__ is dict:
        return v
    raise Bad(f"{key}: expected an object, got {show(v)}")


def r_dict(obj: dict[str, Any], key: str) -> dict[str, Any]:
    """An object; ``null`` or missing gives ``{}``."""
    v = obj.get(key)
    if v.__class__ is dict:
        return v
    if v is None:
        return {}
    raise Bad(f"{key}: expected an object, got {show(v)}")


def r_list(obj: dict[str, Any], key: str) -> list[Any]:
    """An array; ``null`` or missing gives ``[]``."""
    v = obj.get(key)
    if v.__class__ is list:
        return v
    if v is None:
        return []
    raise Bad(f"{key}: expected an array, got {show(v)}")


#: envelope timestamp text -> its datetime (whole seconds as Go stamps them: the messages of one
#: second share it; datetimes are immutable, so sharing one is safe)
_TIMES: dict[str, datetime.datetime] = {}
_TIMES_MAX = 256


def envelope_time(ts: str) -> datetime.datetime | None:
    """The envelope ``timestamp`` as an aware datetime; None when unparsable (Go ignores it too)."""
    when = _TIMES.get(ts) if ts.__class__ is str else None
    if when is not None:
        return when
    try:
        when = _env.parse_timestamp(ts)
    except (ValueError, TypeError):
        return None
    if len(_TIMES) >= _TIMES_MAX:
        _TIMES.clear()
    _TIMES[ts] = when
    return when


__all__ = ["Bad", "envelope_time", "r_bool", "r_dict", "r_int", "r_list", "r_opt_dict", "r_opt_str",
           "r_opt_time", "r_str", "r_time", "show"]
