"""Mmate JSON envelope codec, byte-compatible with mmate-go (compiled: src_cy/envelope.pyx; twin:
mmate_fast/_py/envelope.py). Wire rules: shared/spec/wire-protocol.md §3.

Body = ``{"id","type","timestamp","correlationId"?,"replyTo"?,"headers"?,"payload"}`` in that order,
compact, no trailing newline. ``headers`` and ``payload`` have their object keys sorted at every
level (Go maps). Strings are escaped as Go's encoding/json does (``<`` ``>`` ``&`` U+2028 U+2029 as
``\\u003c`` ``\\u003e`` ``\\u0026`` ``\\u2028`` ``\\u2029``; other control characters ``\\u00XX``
lowercase except ``\\t`` ``\\n`` ``\\r`` ... as Go; non-ASCII raw UTF-8). Numbers as Go prints a
float64 (``3.0`` -> ``3``, ``1e21`` -> ``1e+21``, ``1e-7`` -> ``1e-7``, 1e16 -> ``10000000000000000``,
0.00001 -> ``0.00001``); Python ints are written exactly (no float64 precision loss: Go's loss above
2^53 is a Go bug we do not copy) and read back exactly (``2**64 + 1`` arrives as ``2**64 + 1``, not
rounded; a body with a run of 19 or more digits is parsed again with an exact parser); an int with
more digits than ``sys.get_int_max_str_digits()`` raises ContractError.
Other values: bool, None -> null, str, list/tuple, dict (str keys),
datetime -> Go RFC 3339 with nanosecond fraction trimmed and its own offset (``Z`` for UTC),
date -> ``YYYY-MM-DD``, timedelta -> integer nanoseconds, bytes -> standard base64 with padding,
Decimal -> number, UUID -> string, Enum -> its value, mmate_fast.frames Typed -> its value.
Anything else raises mmate_fast.errors.ContractError naming the offending type.
"""
from __future__ import annotations

import datetime
from collections.abc import Mapping
from typing import Any

class Envelope:
    """A decoded envelope. ``timestamp`` is the raw string; ``headers`` is {} when absent;
    ``payload`` is the decoded JSON value ({} when absent). The compiled ``decode_envelope`` reads
    a plain body (the form Go and we write) without building ``headers``: its JSON is checked as it
    is read and decoded on first access (the twin decodes it at once; same values, same errors);
    a plain payload object likewise (see ``raw_payload``)."""

    id: str
    type: str
    timestamp: str
    correlation_id: str | None
    reply_to: str | None
    headers: dict[str, Any]
    payload: Any
    @property
    def raw_payload(self) -> bytes | None:
        """The payload's JSON bytes while not decoded yet, else None. The compiled
        ``decode_envelope`` keeps a payload object in the strict plain subset (strings without
        escapes or bytes from 0x80, numbers of up to 18 characters without exponent, nesting up to
        32: orjson is sure to read it) this way and decodes it on first access of ``payload``; a
        payload reader's ``decode_envelope`` reads the fields from it directly. The twin: None."""
    def __init__(self, id: str, type: str, timestamp: str, correlation_id: str | None = None,
                 reply_to: str | None = None, headers: dict[str, Any] | None = None,
                 payload: Any = None) -> None: ...
    def __repr__(self) -> str: ...
    def __eq__(self, other: object) -> bool: ...

def new_id() -> str:
    """A random lowercase UUID v4 with hyphens (36 chars), from a buffered CSPRNG (os.urandom)."""

def utc_timestamp(unix_seconds: float | None = None) -> str:
    """Envelope timestamp: UTC RFC 3339, whole seconds (truncated), ``Z`` (``2025-01-02T03:04:05Z``).
    Now when ``unix_seconds`` is None (cached per second)."""

def format_timestamp(value: datetime.datetime) -> str:
    """Envelope timestamp of a datetime (naive = UTC): converted to UTC, truncated to seconds."""

def format_go_time(value: datetime.datetime) -> str:
    """Payload time: RFC 3339 with fraction (trailing zeros trimmed) and the value's own offset,
    ``Z`` for UTC/naive; as Go's time.Time MarshalJSON."""

def parse_timestamp(value: str) -> datetime.datetime:
    """Parse RFC 3339 (fractions, ``Z`` or offsets; what Go and .NET send) to an aware datetime.
    Raises mmate_fast.errors.EnvelopeError(reason="bad-timestamp")."""

def encode_json(value: Any) -> bytes:
    """Go-compatible JSON of one value (keys sorted at every level), e.g. a payload."""

def encode_envelope(id: str, type: str, timestamp: str, correlation_id: str | None,
                    reply_to: str | None, headers: Mapping[str, Any] | None, payload: Any) -> bytes:
    """The whole body. ``correlationId``/``replyTo`` are omitted when None or ""; ``headers`` when
    None (Go always writes them; pass a dict); ``payload`` None -> ``{}``."""

def decode_envelope(body: bytes | bytearray | memoryview) -> Envelope:
    """Parse a body (Go's or .NET's: envelope-level ``replyTo``, fractional timestamps and offsets
    are accepted). Integers of any size decode exactly, floats as float64.
    Raises mmate_fast.errors.EnvelopeError with reason ``not-json``,
    ``not-an-object``, ``bad-field`` (id/type/timestamp/correlationId/replyTo not a string,
    headers not an object) or ``missing-type``."""

__all__ = [
    "Envelope", "decode_envelope", "encode_envelope", "encode_json", "format_go_time",
    "format_timestamp", "new_id", "parse_timestamp", "utc_timestamp",
]
