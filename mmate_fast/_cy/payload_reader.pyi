"""Per-class payload readers: a dataclass instance straight from its decoded JSON payload
(compiled: src_cy/payload_reader.pyx; twin: mmate_fast/_py/payload_reader.py). Load with
``mmate_fast._ext.load("payload_reader")``; ``mmate_fast.contracts._plan`` builds one per class.

Both implementations decode exactly as the plan's generated decoder does (same values, same errors
through the same hooks); the compiled one checks the common field types in C and, with ``direct``,
sets a plain dataclass's attributes on a bare instance in field order (``object.__setattr__``, as
its ``__init__``) instead of calling ``cls(**kw)``.
"""
from __future__ import annotations

from collections.abc import Iterable
from typing import Any

#: field type tags: ``any`` (taken as it is), ``str``/``bool`` (checked), ``int``/``float`` (checked,
#: else the converter), ``call`` (the converter)
TAGS: tuple[str, ...]
#: a field whose key is missing or null: ``default`` (the dataclass default), ``zero`` (Go's zero
#: value through the ``zero`` hook), ``required`` (the ``absent`` hook decides)
MODES: tuple[str, ...]
#: where a top-level field not read from the payload gets its value: ``""`` (nowhere: its default),
#: ``id``, ``type``, ``timestamp`` (the string), ``timestamp_dt`` (``parse_ts`` of it),
#: ``correlationId`` (only when non-empty)
ENVELOPE_SOURCES: tuple[str, ...]

#: (attr, wire name or None, tag, converter, mode, field plan, default, default factory, envelope
#: source): every init field of the class, in declaration order
FieldSpec = tuple[str, str | None, str, Any, str, Any, Any, Any, str]

class PayloadReader:
    """Decodes one dataclass from a dict as orjson returns it.

    ``hooks``: ``conv_error`` (the ConvError class), ``bad`` (expected, value) -> ConvError, ``fail``
    (cls, attr, wire, ConvError) -> raises, ``fold`` (payload, kw, cls, fail), ``absent`` (payload,
    kw, cls, field plan, fail, missing), ``missing``, ``parse_ts`` (str -> datetime | None),
    ``zero`` (field plan -> zero value, raises ConvError). A bad field spec raises TypeError or
    ValueError here.
    """

    cls: type
    top: bool
    direct: bool
    def __init__(self, cls: type, fields: Iterable[FieldSpec], *, top: bool, direct: bool,
                 hooks: dict[str, Any]) -> None: ...
    def decode(self, p: dict[str, Any], id: str, type: str, timestamp: str,
               correlation_id: str | None) -> Any:
        """The message (``top`` reader) from the envelope's payload dict and fields."""
    def decode_envelope(self, env: Any) -> Any:
        """The message (``top`` reader) from a decoded envelope (``envelope.Envelope``): as
        ``decode(env.payload, env.id, env.type, env.timestamp, env.correlation_id)``, values and
        errors alike (a payload that is not a dict: TypeError). The compiled reader reads the
        fields straight from ``env.raw_payload`` when it holds only exact field keys, once each,
        every required one with a value; anything else takes the dict path. It reads the compiled
        ``Envelope``'s fields from its struct (``mmate_fast/_cy/envelope.pxd``, exact type only);
        any other envelope (the twin's, a subclass, a look-alike) by attribute."""
    def decode_nested(self, v: Any) -> Any:
        """A nested value; not a dict: the ``bad("object", v)`` ConvError."""
