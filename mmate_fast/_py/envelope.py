"""Pure-Python twin of the compiled envelope codec (src_cy/envelope.pyx). Same API; the contract is
mmate_fast/_cy/envelope.pyi, the wire rules shared/spec/wire-protocol.md §3.

How the Go bytes are produced (both implementations, tests check they agree byte for byte):
orjson writes the JSON (keys sorted, ``\\b \\f \\n \\r \\t`` short escapes, other control characters
``\\u00xx`` lowercase, raw UTF-8 -- all as Go 1.22+ does); a ``default`` hook turns datetime, date,
timedelta, bytes, Decimal, Typed into Go's form; then a post-pass escapes ``< > &`` U+2028 U+2029
inside strings and rewrites every non-integer number token into Go's float64 notation. orjson writes
NaN/Inf as ``null``, so when ``null`` occurs in the output the value is walked for non-finite floats
(Go refuses them: ContractError).

Decoding keeps every integer exact: orjson turns integers beyond 64 bits into floats, so a body with a
run of 19 or more digits (the shortest integer orjson may round) is parsed again with the stdlib parser.
"""
from __future__ import annotations

import base64
import builtins
import datetime
import decimal
import enum
import json
import math
import os
import re
import time
import uuid
from collections.abc import Mapping
from typing import Any, cast

import orjson

from mmate_fast.errors import ContractError, EnvelopeError

_UTC = datetime.UTC
_EPOCH = datetime.datetime(1970, 1, 1)
_MIN_UNIX = -62135596800  # 0001-01-01T00:00:00Z
_MAX_UNIX = 253402300799  # 9999-12-31T23:59:59Z
_MAX_DEPTH = 254
_OPTS = orjson.OPT_SORT_KEYS | orjson.OPT_PASSTHROUGH_DATETIME | orjson.OPT_PASSTHROUGH_DATACLASS
_INT64_MIN = -(2**63)
_UINT64_MAX = 2**64 - 1


def _typed_classes() -> tuple[type, ...]:
    """The frame codec's Typed classes (both implementations), unwrapped to their value."""
    from mmate_fast._py import frames as _pyf
    classes: list[type] = [_pyf.Typed]
    try:
        from mmate_fast._cy import frames as _cyf
        classes.append(_cyf.Typed)
    except ImportError:
        pass
    return tuple(classes)


_TYPED: tuple[Any, ...] = _typed_classes()


class Envelope:
    """A decoded envelope. ``timestamp`` is the raw string; ``headers`` is {} when absent;
    ``payload`` is the decoded JSON value ({} when absent)."""

    __slots__ = ("correlation_id", "headers", "id", "payload", "reply_to", "timestamp", "type")

    def __init__(self, id: str, type: str, timestamp: str, correlation_id: str | None = None,
                 reply_to: str | None = None, headers: dict[str, Any] | None = None,
                 payload: Any = None) -> None:
        self.id = id
        self.type = type
        self.timestamp = timestamp
        self.correlation_id = correlation_id
        self.reply_to = reply_to
        self.headers = {} if headers is None else headers
        self.payload = {} if payload is None else payload

    def _values(self) -> tuple[Any, ...]:
        return (self.id, self.type, self.timestamp, self.correlation_id, self.reply_to, self.headers,
                self.payload)

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Envelope):
            return self._values() == other._values()
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]

    @property
    def raw_payload(self) -> bytes | None:
        """Always None here: the twin decodes the payload at once (the compiled Envelope keeps a
        plain payload object's JSON bytes until first access)."""
        return None

    def __repr__(self) -> str:
        return (f"Envelope(id={self.id!r}, type={self.type!r}, timestamp={self.timestamp!r}, "
                f"correlation_id={self.correlation_id!r}, reply_to={self.reply_to!r}, "
                f"headers={self.headers!r}, payload={self.payload!r})")


# --------------------------------------------------------------------------- ids and timestamps
def new_id() -> str:
    """A random lowercase UUID v4 with hyphens (36 chars), from os.urandom."""
    return str(uuid.UUID(bytes=os.urandom(16), version=4))


def _civil(unix: int) -> str:
    """``YYYY-MM-DDThh:mm:ssZ`` of whole Unix seconds (years 1..9999, else ContractError)."""
    if not _MIN_UNIX <= unix <= _MAX_UNIX:
        raise ContractError(f"timestamp {unix} is outside the years 1..9999")
    d = _EPOCH + datetime.timedelta(seconds=unix)
    return (f"{d.year:04d}-{d.month:02d}-{d.day:02d}T{d.hour:02d}:{d.minute:02d}:{d.second:02d}Z")


_ts_cache: list[Any] = [None, ""]


def utc_timestamp(unix_seconds: float | None = None) -> str:
    """Envelope timestamp: UTC RFC 3339, whole seconds (truncated), ``Z``. Now when None (cached)."""
    if unix_seconds is None:
        sec = int(time.time())
        if sec != _ts_cache[0]:
            _ts_cache[1] = _civil(sec)
            _ts_cache[0] = sec
        return str(_ts_cache[1])
    try:
        sec = math.floor(unix_seconds)
    except (TypeError, ValueError, OverflowError) as exc:
        raise ContractError(f"unix_seconds must be a finite number, not {unix_seconds!r}") from exc
    return _civil(sec)


def _utc_naive(value: datetime.datetime) -> datetime.datetime:
    off = value.utcoffset()
    naive = value.replace(tzinfo=None)
    if off:
        try:
            naive = naive - off
        except OverflowError as exc:
            raise ContractError(f"{value!r} is outside the years 1..9999 in UTC") from exc
    return naive


def format_timestamp(value: datetime.datetime) -> str:
    """Envelope timestamp of a datetime (naive = UTC): converted to UTC, truncated to seconds."""
    if not isinstance(value, datetime.datetime):
        raise ContractError(f"a timestamp must be a datetime.datetime, not {type(value).__qualname__}")
    d = _utc_naive(value)
    return f"{d.year:04d}-{d.month:02d}-{d.day:02d}T{d.hour:02d}:{d.minute:02d}:{d.second:02d}Z"


def format_go_time(value: datetime.datetime) -> str:
    """Payload time: RFC 3339 with fraction (trailing zeros trimmed) and the value's own offset,
    ``Z`` for UTC/naive; as Go's time.Time MarshalJSON."""
    if not isinstance(value, datetime.datetime):
        raise ContractError(f"a time must be a datetime.datetime, not {type(value).__qualname__}")
    d = value
    s = f"{d.year:04d}-{d.month:02d}-{d.day:02d}T{d.hour:02d}:{d.minute:02d}:{d.second:02d}"
    if d.microsecond:
        s += f".{d.microsecond:06d}".rstrip("0")
    off = d.utcoffset()
    secs = 0 if off is None else off.days * 86400 + off.seconds
    if secs == 0:
        return s + "Z"
    # Go: zone = offset/60 truncated toward zero; the sign comes from the minutes
    zone = int(secs / 60)
    sign = "+"
    if zone < 0:
        sign, zone = "-", -zone
    return f"{s}{sign}{zone // 60:02d}:{zone % 60:02d}"


_RFC3339 = re.compile(
    r"([0-9]{4})-([0-9]{2})-([0-9]{2})[Tt]([0-9]{2}):([0-9]{2}):([0-9]{2})(?:\.([0-9]{1,9}))?"
    r"(?:([Zz])|([+-])([0-9]{2}):([0-9]{2}))")


def parse_timestamp(value: str) -> datetime.datetime:
    """Parse RFC 3339 (fractions up to 9 digits, truncated to microseconds; ``Z``/``z`` or offsets)
    to an aware datetime. Raises EnvelopeError(reason="bad-timestamp")."""
    m = _RFC3339.fullmatch(value) if isinstance(value, str) else None
    if m is None:
        raise EnvelopeError(f"timestamp {value!r} is not RFC 3339", "bad-timestamp")
    y, mo, d, h, mi, s, frac, z, sign, oh, om = m.groups()
    try:
        if z is not None:
            tz: datetime.tzinfo = _UTC
        else:
            if int(oh) > 23 or int(om) > 59:
                raise ValueError("offset out of range")
            off = datetime.timedelta(hours=int(oh), minutes=int(om))
            tz = datetime.timezone(-off if sign == "-" else off)
        us = int((frac + "00000")[:6]) if frac else 0
        return datetime.datetime(int(y), int(mo), int(d), int(h), int(mi), int(s), us, tzinfo=tz)
    except ValueError as exc:
        raise EnvelopeError(f"timestamp {value!r} is not a valid time: {exc}", "bad-timestamp") from None


# --------------------------------------------------------------------------- Go numbers and strings
def go_number(token: bytes) -> bytes:
    """Rewrite a JSON number token (shortest digits, any notation) as Go prints a float64:
    'f' notation for 1e-6 <= |x| < 1e21, else 'e' with an unpadded exponent (``1e+21``, ``1e-7``)."""
    neg = token[:1] == b"-"
    body = token[1:] if neg else token
    epos = max(body.find(b"e"), body.find(b"E"))
    exp = 0
    if epos >= 0:
        etok = body[epos + 1:]
        if len(etok.lstrip(b"+-")) > 9:
            raise ContractError(f"number {token.decode()} has an exponent beyond Go's float64 range")
        exp = int(etok)
        body = body[:epos]
    dot = body.find(b".")
    if dot >= 0:
        digits = body[:dot] + body[dot + 1:]
        exp -= len(body) - dot - 1
    else:
        digits = body
    digits = digits.lstrip(b"0")
    stripped = digits.rstrip(b"0")
    exp += len(digits) - len(stripped)
    digits = stripped
    sign = b"-" if neg else b""
    if not digits:
        return sign + b"0"
    nd = len(digits)
    sx = nd - 1 + exp
    if sx < -6 or sx >= 21:
        mant = digits[:1] + (b"." + digits[1:] if nd > 1 else b"")
        return sign + mant + (b"e-" if sx < 0 else b"e+") + str(abs(sx)).encode()
    if exp >= 0:
        return sign + digits + b"0" * exp
    k = nd + exp
    if k > 0:
        return sign + digits[:k] + b"." + digits[k:]
    return sign + b"0." + b"0" * (-k) + digits


def _go_escapes(out: bytes) -> bytes:
    """Go's extra string escapes; orjson never writes these bytes outside strings."""
    if b"<" in out:
        out = out.replace(b"<", b"\\u003c")
    if b">" in out:
        out = out.replace(b">", b"\\u003e")
    if b"&" in out:
        out = out.replace(b"&", b"\\u0026")
    if b"\xe2\x80" in out:
        out = out.replace(b"\xe2\x80\xa8", b"\\u2028").replace(b"\xe2\x80\xa9", b"\\u2029")
    return out


# --------------------------------------------------------------------------- value encoding
def _default(obj: Any) -> Any:
    """orjson hook: Go's representation of the non-JSON types of the contract."""
    if isinstance(obj, datetime.datetime):
        return orjson.Fragment(b'"' + format_go_time(obj).encode() + b'"')
    if isinstance(obj, datetime.date):
        return orjson.Fragment(f'"{obj.year:04d}-{obj.month:02d}-{obj.day:02d}"'.encode())
    if isinstance(obj, datetime.timedelta):
        ns = ((obj.days * 86400 + obj.seconds) * 1_000_000 + obj.microseconds) * 1000
        return orjson.Fragment(str(ns).encode())
    if isinstance(obj, (bytes, bytearray, memoryview)):
        return orjson.Fragment(b'"' + base64.b64encode(obj) + b'"')
    if isinstance(obj, decimal.Decimal):
        if not obj.is_finite():
            raise ContractError(f"{obj} is not a JSON number (Go refuses NaN/Inf)")
        return orjson.Fragment(go_number(str(obj).encode()))
    if isinstance(obj, _TYPED):
        return obj.value
    if isinstance(obj, float):
        if not math.isfinite(obj):
            raise ContractError(f"{obj!r} is not a JSON number (Go refuses NaN/Inf)")
        return orjson.Fragment(go_number(float.__repr__(obj).encode()))
    raise ContractError(f"cannot encode a value of type {type(obj).__module__}.{type(obj).__qualname__} "
                        "as Mmate JSON")


_DEEP = "cannot encode as Mmate JSON: Recursion limit reached"


def _big_int(value: int) -> orjson.Fragment:
    """An int beyond 64 bits as its exact number literal (orjson stops at 64 bits)."""
    try:
        return orjson.Fragment(int.__repr__(value).encode())
    except ValueError:  # more digits than sys.get_int_max_str_digits() allows
        raise ContractError(f"an int of {value.bit_length()} bits has more digits than Python writes as "
                            "text (sys.set_int_max_str_digits); send it as a string") from None


def _prep(value: Any, bad: list[float], depth: int = 0) -> Any:
    """Copy of value as orjson input: floats as Go-notation fragments (non-finite ones become None
    and are listed in ``bad``), ints beyond 64 bits as fragments, Enum/Typed unwrapped; everything else
    is left for orjson and ``_default``."""
    t = type(value)
    if t is str or t is bool or value is None:
        return value
    if isinstance(value, float):
        if not math.isfinite(value):
            bad.append(value)
            return None
        r = float.__repr__(value)
        if "e" in r:
            return orjson.Fragment(go_number(r.encode()))
        return orjson.Fragment((r[:-2] if r.endswith(".0") else r).encode())
    if isinstance(value, int):
        if _INT64_MIN <= value <= _UINT64_MAX:
            return value
        return _big_int(value)
    if isinstance(value, dict):
        if depth >= _MAX_DEPTH:
            raise ContractError(_DEEP)
        return {k: _prep(v, bad, depth + 1) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        if depth >= _MAX_DEPTH:
            raise ContractError(_DEEP)
        return [_prep(v, bad, depth + 1) for v in value]
    if isinstance(value, (enum.Enum, *_TYPED)):
        return _prep(cast(Any, value).value, bad, depth)
    return value


def _dumps(value: Any, option: int = _OPTS) -> bytes:
    try:
        return orjson.dumps(value, default=_default, option=option)
    except orjson.JSONEncodeError as exc:
        cause = exc.__cause__
        if isinstance(cause, ContractError):
            raise cause from None
        raise ContractError(f"cannot encode as Mmate JSON: {exc}") from None


def _not_finite(bad: list[float]) -> ContractError:
    return ContractError(f"{bad[0]!r} is not a JSON number (Go refuses NaN/Inf)")


def encode_json(value: Any) -> bytes:
    """Go-compatible JSON of one value (keys sorted at every level), e.g. a payload."""
    bad: list[float] = []
    out = _dumps(_prep(value, bad))
    if bad:
        raise _not_finite(bad)
    return _go_escapes(out)


def _need_str(name: str, value: Any) -> None:
    if not isinstance(value, str):
        raise ContractError(f"envelope {name} must be a str, not {builtins.type(value).__qualname__}")


def encode_envelope(id: str, type: str, timestamp: str, correlation_id: str | None,
                    reply_to: str | None, headers: Mapping[str, Any] | None, payload: Any) -> bytes:
    """The whole body, keys in Go's order (id, type, timestamp, correlationId?, replyTo?, headers?,
    payload)."""
    _need_str("id", id)
    _need_str("type", type)
    _need_str("timestamp", timestamp)
    env: dict[str, Any] = {"id": id, "type": type, "timestamp": timestamp}
    if correlation_id is not None and correlation_id != "":
        _need_str("correlationId", correlation_id)
        env["correlationId"] = correlation_id
    if reply_to is not None and reply_to != "":
        _need_str("replyTo", reply_to)
        env["replyTo"] = reply_to
    _dumps(list(env.values()))  # surrogates in a field fail first, as in the compiled codec
    bad: list[float] = []
    if headers is not None:
        if not isinstance(headers, dict):
            if not isinstance(headers, Mapping):
                raise ContractError(f"headers must be a mapping, not {builtins.type(headers).__qualname__}")
            headers = dict(headers)
        env["headers"] = orjson.Fragment(_dumps(_prep(headers, bad)))
    env["payload"] = orjson.Fragment(_dumps(_prep({} if payload is None else payload, bad)))
    if bad:
        raise _not_finite(bad)
    return _go_escapes(orjson.dumps(env))


# --------------------------------------------------------------------------- decoding
_LONG_RUN = 19  # digits: -9999999999999999999 is the shortest integer orjson reads as a float
_DIGITS_ONLY = bytes(0x30 if 0x30 <= i <= 0x39 else 0x20 for i in range(256))  # digit -> "0", else " "
_RUN = b"0" * _LONG_RUN
_LONG_DIGITS_STR = re.compile(f"[0-9]{{{_LONG_RUN}}}")


_JSON_STRING = re.compile(rb'"(?:[^"\\]|\\.)*"', re.DOTALL)


def _long_digits(body: Any) -> bool:
    """True when ``body`` holds a digit run long enough to be an integer orjson rounds, in a number
    token: digits inside strings (nanosecond stamps, snowflake ids sent as text) do not count."""
    if isinstance(body, str):
        if _LONG_DIGITS_STR.search(body) is None:
            return False
        body = body.encode("utf-8", "surrogatepass")
    try:
        data = body if isinstance(body, (bytes, bytearray)) else bytes(body)
    except (TypeError, ValueError, BufferError):  # not bytes: orjson says what is wrong
        return False
    if _RUN not in data.translate(_DIGITS_ONLY):
        return False
    return _RUN in _JSON_STRING.sub(b'""', data).translate(_DIGITS_ONLY)


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"number {text} is beyond float64")
    return value


def _exact_loads(body: Any) -> Any:
    """``body`` parsed with every integer exact (the stdlib parser, as strict as orjson on NaN,
    Infinity and floats beyond float64). Raises ValueError or RecursionError when it does not parse."""
    text = body if isinstance(body, str) else bytes(body).decode("utf-8")
    return json.loads(text, parse_float=_finite_float, parse_constant=_no_constant)


_FAILED = object()


def _reparse(body: Any, fallback: Any) -> Any:
    """``body`` parsed with every integer exact, or ``fallback`` when it does not parse that way."""
    try:
        return _exact_loads(body)
    except (ValueError, RecursionError):  # e.g. deeper than the stdlib parser goes
        return fallback


def decode_envelope(body: bytes | bytearray | memoryview) -> Envelope:
    """Parse a body (Go's or .NET's). Raises EnvelopeError with reason ``not-json``,
    ``not-an-object``, ``bad-field`` or ``missing-type``."""
    try:
        doc = orjson.loads(body)
    except orjson.JSONDecodeError as exc:  # e.g. an integer beyond float64, which orjson refuses
        doc = _reparse(body, _FAILED) if _long_digits(body) else _FAILED
        if doc is _FAILED:
            raise EnvelopeError(f"message body is not JSON: {exc}", "not-json") from None
    except TypeError as exc:
        raise EnvelopeError(f"message body must be bytes, not {type(body).__qualname__}",
                            "not-json") from exc
    else:  # orjson reads integers beyond 64 bits as floats: parse those bodies again, exactly
        if _long_digits(body):
            doc = _reparse(body, doc)
    if not isinstance(doc, dict):
        raise EnvelopeError(f"message body is a JSON {type(doc).__name__}, not an object",
                            "not-an-object")
    vals: list[Any] = []
    for key in ("id", "type", "timestamp", "correlationId", "replyTo"):
        v = doc.get(key)
        if v is not None and type(v) is not str:
            raise EnvelopeError(f"envelope field {key!r} must be a string, not {type(v).__name__}",
                                "bad-field")
        vals.append(v)
    mid, mtype, ts, cid, rto = vals
    if not mtype:
        raise EnvelopeError("envelope has no 'type'", "missing-type")
    headers = doc.get("headers")
    if headers is None:
        headers = {}
    elif type(headers) is not dict:
        raise EnvelopeError(f"envelope field 'headers' must be an object, not {type(headers).__name__}",
                            "bad-field")
    env = Envelope(mid if mid is not None else "", mtype, ts if ts is not None else "", cid, rto, headers)
    env.payload = doc.get("payload", {})  # a JSON null payload stays None
    return env


__all__ = [
    "Envelope", "decode_envelope", "encode_envelope", "encode_json", "format_go_time",
    "format_timestamp", "new_id", "parse_timestamp", "utc_timestamp",
]
