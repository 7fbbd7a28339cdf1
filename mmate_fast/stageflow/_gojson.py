"""Go ``encoding/json`` output for StageFlow's struct-ordered JSON strings, and an exact reader.

Go marshals a struct in field order but a ``map[string]interface{}`` with sorted keys, floats in
its own notation and ``< > &`` U+2028 U+2029 escaped. Maps go through the envelope codec's
``encode_json`` (sorted, Go numbers, Go escapes; compiled or its twin); the struct around them is
an insertion-ordered dict written by orjson with the maps as fragments, then given Go's escapes.
"""
from __future__ import annotations

import json
import math
from typing import Any

import orjson

from mmate_fast._ext import load
from mmate_fast._py.envelope import _go_escapes  # the envelope codec's own: one place for Go's escapes
from mmate_fast.errors import ContractError, FlowWireError

_env = load("envelope")
_encode_json = _env.encode_json
Fragment = orjson.Fragment

#: what orjson does not read as Go does: an integer beyond 64 bits (orjson rounds it; a run of 20
#: digits, or "-" and 19 digits: below -2**63) or a negative zero (orjson gives int 0; Go keeps
#: float64 -0 and writes ``-0`` again).
#: One translate finds both: digits -> "0", letters and "." -> "a", "-" stays, anything else -> " ".
_CLASSES = bytes(0x30 if 0x30 <= i <= 0x39 else 0x61 if (0x41 <= i <= 0x5A or 0x61 <= i <= 0x7A or i == 0x2E)
                 else 0x2D if i == 0x2D else 0x20 for i in range(256))
_RUN = b"0" * 20
_NEG_RUN = b"-" + b"0" * 19


def go_map(value: dict[str, Any], what: str) -> orjson.Fragment:
    """A Go map (sorted keys at every level, Go numbers and escapes) as a JSON fragment; raises
    FlowWireError naming ``what`` when a value cannot be written as JSON."""
    try:
        return Fragment(_encode_json(value))
    except (ContractError, TypeError, ValueError, OverflowError, RecursionError) as exc:
        raise FlowWireError(f"{what} cannot be written as JSON: {exc}") from None


def go_dumps(struct: dict[str, Any]) -> str:
    """An insertion-ordered dict (values: str, int, bool, None, lists, fragments) as Go's JSON."""
    try:
        return _go_escapes(orjson.dumps(struct)).decode()
    except orjson.JSONEncodeError as exc:
        raise FlowWireError(f"cannot write as JSON: {exc}") from None


def _finite(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"number {text} is beyond float64")
    return value


def _constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _int(text: str) -> int | float:
    return -0.0 if text == "-0" else int(text)


def loads(text: Any) -> Any:
    """Parse JSON text as Go reads it into ``interface{}``, integers exact: text with a run of 20
    digits (19 after a ``-``) or a ``-0`` is parsed with the stdlib (slow path). Raises ValueError
    when it is not JSON."""
    if text.__class__ is str:
        classes = text.encode().translate(_CLASSES)
        if _RUN in classes or _NEG_RUN in classes or b"-0 " in classes or classes.endswith(b"-0"):
            return json.loads(text, parse_float=_finite, parse_int=_int, parse_constant=_constant)
    return orjson.loads(text)


__all__ = ["Fragment", "go_dumps", "go_map", "loads"]
