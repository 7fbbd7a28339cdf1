"""Value converters chosen once per annotation: JSON value -> Python value (decode), and the
runtime encoder for values whose class is only known at publish time (``Any``, nested models).

Decode follows Go's encoding/json strictness (a string is not an int, ``1.5`` is not an int,
``true`` is not a number) and raises ``ConvError`` (a ContractError) naming the path. Like Go's
decoder, every converter takes JSON ``null`` as the zero value of its type (``conv(None)`` *is* the
zero: ``""``, 0, 0.0, False, [], {}, set(), the zero time ``0001-01-01T00:00:00Z``, the zero struct
of a nested class, None for Optional and Any).
"""
from __future__ import annotations

import base64
import binascii
import collections.abc as cabc
import dataclasses
import datetime as _dt
import enum
import types
import typing
import uuid
from collections.abc import Callable
from decimal import Decimal, InvalidOperation
from typing import Any

from mmate_fast._ext import load
from mmate_fast.errors import ContractError

_env = load("envelope")
_parse_timestamp = _env.parse_timestamp

Conv = Callable[[Any], Any]


class ConvError(ContractError):
    """A payload value does not fit the annotation; ``path`` grows as the error bubbles up."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason
        self.path = ""

    def at(self, segment: str) -> ConvError:
        """Prepend a path segment (``.field`` or ``[3]``) and return self for re-raising."""
        self.path = segment + self.path
        return self

    def __str__(self) -> str:
        return f"{self.path}: {self.reason}" if self.path else self.reason


def _show(v: Any) -> str:
    r = repr(v)
    return f"{type(v).__name__} {r[:60]}{'...' if len(r) > 60 else ''}"


def bad(expected: str, v: Any) -> ConvError:
    """The error for a value of the wrong JSON type."""
    return ConvError(f"expected {expected}, got {_show(v)}")


# --------------------------------------------------------------------------- scalar converters
#: Go's zero time, what Go itself sends for an unset ``time.Time``
ZERO_TIME = _dt.datetime(1, 1, 1, tzinfo=_dt.UTC)


def c_str(v: Any) -> str:
    if v.__class__ is str:
        return v
    if v is None:
        return ""
    raise bad("string", v)


def c_bool(v: Any) -> bool:
    if v.__class__ is bool:
        return v
    if v is None:
        return False
    raise bad("bool", v)


def c_int(v: Any) -> int:
    c = v.__class__
    if c is int:
        return v
    if c is float and v.is_integer():
        return int(v)
    if v is None:
        return 0
    raise bad("integer", v)


def c_float(v: Any) -> float:
    c = v.__class__
    if c is float:
        return v
    if c is int:
        return float(v)
    if v is None:
        return 0.0
    raise bad("number", v)


def c_datetime(v: Any) -> _dt.datetime:
    if v.__class__ is str:
        try:
            return _parse_timestamp(v)
        except (ValueError, TypeError) as e:
            raise ConvError(f"not an RFC 3339 time: {v!r}") from e
    if isinstance(v, _dt.datetime):
        return v
    if v is None:
        return ZERO_TIME
    raise bad("RFC 3339 time string", v)


def c_date(v: Any) -> _dt.date:
    if v.__class__ is str:
        try:
            return _dt.date.fromisoformat(v[:10])
        except ValueError as e:
            raise ConvError(f"not a date: {v!r}") from e
    if v is None:
        return _dt.date.min
    raise bad("date string", v)


def c_timedelta(v: Any) -> _dt.timedelta:
    ns = c_int(v) if v.__class__ is not int else v
    return _dt.timedelta(microseconds=ns // 1000)


def c_bytes(v: Any) -> bytes:
    if v.__class__ is str:
        try:
            return base64.b64decode(v, validate=True)
        except (binascii.Error, ValueError) as e:
            raise ConvError(f"not standard base64: {v[:40]!r}") from e
    if v is None:  # Go: a nil []byte
        return b""
    raise bad("base64 string", v)


def c_decimal(v: Any) -> Decimal:
    c = v.__class__
    if c is int or c is float or c is str:
        try:
            return Decimal(repr(v) if c is float else v)
        except InvalidOperation as e:
            raise ConvError(f"not a decimal number: {v!r}") from e
    if v is None:
        return Decimal(0)
    raise bad("number", v)


def c_uuid(v: Any) -> uuid.UUID:
    if v.__class__ is str:
        try:
            return uuid.UUID(v)
        except ValueError as e:
            raise ConvError(f"not a UUID: {v!r}") from e
    if v is None:
        return uuid.UUID(int=0)
    raise bad("UUID string", v)


def _no_zero(what: str) -> ConvError:
    return ConvError(f"is null, and {what} has no zero value to take its place (Go would leave the zero "
                     "of its type): declare the field Optional (``X | None``) or give it a default")


def _zero_member(values: Any, value_of: Callable[[Any], Any] = lambda x: x) -> tuple[bool, Any]:
    """(found, item): the first of ``values`` whose ``value_of`` is Go's zero ("", 0, False, None)."""
    for item in values:
        value = value_of(item)
        if value is None or (isinstance(value, str | int | float) and not value):
            return True, item
    return False, None


def _enum_conv(tp: type[enum.Enum]) -> Conv:
    found, zero = _zero_member(tp, lambda m: m.value)

    def conv(v: Any) -> Any:
        if v is None:
            if found:
                return zero
            raise _no_zero(f"{tp.__name__} (no member has the value \"\" or 0)")
        try:
            return tp(v)
        except ValueError:
            raise ConvError(f"{v!r} is not a valid {tp.__name__}") from None
    return conv


def _isinstance_conv(tp: type, expected: str) -> Conv:
    def conv(v: Any) -> Any:
        if isinstance(v, tp):
            return v
        if v is None:
            raise _no_zero(expected)
        raise bad(expected, v)
    return conv


def _none_conv(v: Any) -> None:
    if v is not None:
        raise bad("null", v)


# --------------------------------------------------------------------------- containers
def _list_conv(item: Conv | None, make: Callable[[Any], Any] = list) -> Conv:
    def conv(v: Any) -> Any:
        if v.__class__ is not list:
            if v is None:  # Go: a nil slice
                return [] if make is list else make(())
            raise bad("array", v)
        if item is None:
            return v if make is list else make(v)
        out = []
        for i, x in enumerate(v):
            try:
                out.append(item(x))
            except ConvError as e:
                raise e.at(f"[{i}]") from None
        return out if make is list else make(out)
    return conv


def _tuple_conv(items: list[Conv | None]) -> Conv:
    def conv(v: Any) -> Any:
        if v.__class__ is not list:
            if v is None:  # Go: a fixed-size array holds the zero of each element
                return tuple(None if c is None else c(None) for c in items)
            raise bad("array", v)
        if len(v) != len(items):
            raise ConvError(f"expected an array of {len(items)} items, got {len(v)}")
        out = []
        for i, (c, x) in enumerate(zip(items, v, strict=True)):
            try:
                out.append(x if c is None else c(x))
            except ConvError as e:
                raise e.at(f"[{i}]") from None
        return tuple(out)
    return conv


def _dict_conv(key: Conv | None, val: Conv | None) -> Conv:
    def conv(v: Any) -> Any:
        if v.__class__ is not dict:
            if v is None:  # Go: a nil map
                return {}
            raise bad("object", v)
        if key is None and val is None:
            return v
        out = {}
        for k, x in v.items():
            try:
                out[k if key is None else key(k)] = x if val is None else val(x)
            except ConvError as e:
                raise e.at(f"[{k!r}]") from None
        return out
    return conv


def _optional_conv(inner: Conv) -> Conv:
    def conv(v: Any) -> Any:
        return None if v is None else inner(v)
    return conv


def _union_conv(convs: list[Conv | None], names: str) -> Conv:
    def conv(v: Any) -> Any:
        for c in convs:
            if c is None:
                return v
            try:
                return c(v)
            except ConvError:
                continue
        raise bad(names, v)
    return conv


def _literal_conv(values: tuple[Any, ...]) -> Conv:
    found, zero = _zero_member(values)

    def conv(v: Any) -> Any:
        if v in values:
            return v
        if v is None:
            if found:
                return zero
            raise _no_zero(f"Literal{list(values)!r}")
        raise ConvError(f"{v!r} is not one of {values!r}")
    return conv


def is_pydantic_model(tp: Any) -> bool:
    """True for pydantic v2 model classes (duck-typed: no pydantic import needed)."""
    return isinstance(tp, type) and hasattr(tp, "model_validate") and hasattr(tp, "model_dump")


# --------------------------------------------------------------------------- building
#: tags that generated decoders inline instead of calling a converter
INLINE_TAGS = ("any", "str", "int", "float", "bool")


def converter(tp: Any, nested_decoder: Callable[[type], Conv]) -> tuple[str, Conv | None]:
    """(tag, converter) for an annotation. ``tag`` is ``any`` (no conversion), ``str``/``int``/
    ``float``/``bool`` (generated code inlines the check) or ``call``."""
    origin = typing.get_origin(tp)
    if origin is typing.Annotated:
        return converter(typing.get_args(tp)[0], nested_decoder)
    if tp is Any or tp is object or isinstance(tp, typing.TypeVar):
        return "any", None
    if tp is str:
        return "str", c_str
    if tp is bool:
        return "bool", c_bool
    if tp is int:
        return "int", c_int
    if tp is float:
        return "float", c_float
    if origin is None and isinstance(tp, type):
        return "call", _class_conv(tp, nested_decoder)
    args = typing.get_args(tp)
    if origin is typing.Union or origin is types.UnionType:
        rest = [a for a in args if a is not type(None)]
        if len(rest) < len(args):  # Optional
            if len(rest) == 1:
                _tag, inner = converter(rest[0], nested_decoder)
                return ("any", None) if inner is None else ("call", _optional_conv(inner))
            _tag, inner = converter(typing.Union[tuple(rest)], nested_decoder)  # noqa: UP007
            return ("any", None) if inner is None else ("call", _optional_conv(inner))
        convs = [converter(a, nested_decoder)[1] for a in rest]
        return "call", _union_conv(convs, " or ".join(getattr(a, "__name__", str(a)) for a in rest))
    if origin is typing.Literal:
        return "call", _literal_conv(args)
    if origin in (list, cabc.Sequence, cabc.MutableSequence, cabc.Iterable, cabc.Collection):
        return "call", _list_conv(converter(args[0], nested_decoder)[1] if args else None)
    if origin in (set, frozenset, cabc.Set, cabc.MutableSet):
        make: Callable[[Any], Any] = frozenset if origin is frozenset else set
        return "call", _list_conv(converter(args[0], nested_decoder)[1] if args else None, make)
    if origin is tuple:
        if len(args) == 2 and args[1] is Ellipsis:
            return "call", _list_conv(converter(args[0], nested_decoder)[1], tuple)
        if args == ((),):
            return "call", _tuple_conv([])
        return "call", _tuple_conv([converter(a, nested_decoder)[1] for a in args])
    if origin in (dict, cabc.Mapping, cabc.MutableMapping):
        key = converter(args[0], nested_decoder)[1] if args else None
        if key is c_str:
            key = None  # JSON object keys are always strings
        val = converter(args[1], nested_decoder)[1] if len(args) > 1 else None
        return "call", _dict_conv(key, val)
    if isinstance(origin, type):
        return converter(origin, nested_decoder)
    return "any", None


def _class_conv(tp: type, nested_decoder: Callable[[type], Conv]) -> Conv:
    if issubclass(tp, enum.Enum):
        return _enum_conv(tp)
    if tp is _dt.datetime:
        return c_datetime
    if tp is _dt.date:
        return c_date
    if tp is _dt.timedelta:
        return c_timedelta
    if tp is bytes or tp is bytearray:
        return c_bytes
    if tp is Decimal:
        return c_decimal
    if tp is uuid.UUID:
        return c_uuid
    if tp is type(None):
        return _none_conv
    if dataclasses.is_dataclass(tp) or is_pydantic_model(tp):
        return nested_decoder(tp)
    if tp is list:
        return _list_conv(None)
    if tp is dict:
        return _dict_conv(None, None)
    if tp is tuple:
        return _list_conv(None, tuple)
    return _isinstance_conv(tp, tp.__name__)


# --------------------------------------------------------------------------- runtime encoding
_LEAVES = frozenset({str, int, float, bool, type(None), _dt.datetime, _dt.date, _dt.timedelta,
                     bytes, Decimal, uuid.UUID})


def encode_value(v: Any, nested_encoder: Callable[[Any], Any]) -> Any:
    """Convert one value for the payload: dataclasses and pydantic models (via ``nested_encoder``)
    and containers of them; leaves JSON scalars, datetime, timedelta, bytes, Decimal, UUID and Enum
    values for the envelope codec."""
    c = v.__class__
    if c in _LEAVES:
        return v
    if c is list or c is tuple or c is set or c is frozenset:
        return [encode_value(x, nested_encoder) for x in v]
    if c is dict:
        return {k: encode_value(x, nested_encoder) for k, x in v.items()}
    if isinstance(v, enum.Enum):
        return v
    if dataclasses.is_dataclass(v) or is_pydantic_model(c):
        return nested_encoder(v)
    if isinstance(v, cabc.Mapping):
        return {k: encode_value(x, nested_encoder) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [encode_value(x, nested_encoder) for x in v]
    return v


__all__ = ["INLINE_TAGS", "ConvError", "bad", "converter", "encode_value", "is_pydantic_model"]
