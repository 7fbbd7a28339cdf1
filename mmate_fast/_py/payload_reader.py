"""Per-class payload readers: a dataclass instance straight from its decoded JSON payload (twin of
src_cy/payload_reader.pyx; contract: mmate_fast/_cy/payload_reader.pyi).

A reader is built once per contract class by ``mmate_fast.contracts._plan`` from the class's field
plans; it does what the generated decoder of the plan does (Go's rules: missing keys and ``null``
keep the default or get the zero value, keys matched exactly and else case-insensitively, values
checked and converted per field) and raises the same errors through the plan's hooks. What it adds
is speed: the compiled module checks the common field types in C and, for a plain dataclass (its
generated ``__init__``, no ``__post_init__``, ``__new__`` or ``__setattr__`` of its own), sets the
attributes of a bare instance in field order (``object.__setattr__``, as that ``__init__`` does)
instead of calling ``cls(**kw)``.

The codec layer knows nothing of contracts: the error classes and the slow paths (case-insensitive
keys, required keys, timestamps) come in as hooks.
"""
from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Any

#: field type tags (as ``contracts._types.converter`` names them)
TAGS = ("any", "str", "bool", "int", "float", "call")
#: what happens to a field whose key is missing or null
MODES = ("default", "zero", "required")
#: where a top-level field's value comes from when it is not a payload key
ENVELOPE_SOURCES = ("", "id", "type", "timestamp", "timestamp_dt", "correlationId")

_M = object()

#: one field: (attr, wire name or None, tag, converter, mode, field plan, default, default factory,
#: envelope source); default/factory are ``None`` when the field has none (see ``has_default``)
FieldSpec = tuple[str, "str | None", str, Any, str, Any, Any, Any, str]


class PayloadReader:
    """Decodes one dataclass (``top``: the message itself, from the envelope's payload and fields;
    else a nested value) from a dict as orjson returns it.

    ``fields``: every init field of the class in declaration order (see ``FieldSpec``); ``hooks``:
    ``conv_error`` (the ConvError class), ``bad`` (expected, value) -> ConvError, ``fail`` (cls, attr,
    wire, ConvError) -> raises, ``fold`` (payload, kw, cls, fail) for keys that match only
    case-insensitively, ``absent`` (payload, kw, cls, field plan, fail, missing) for a required field
    not decoded, ``missing``, ``parse_ts`` (envelope timestamp str -> datetime | None) and ``zero``
    (field plan -> Go's zero value; raises ConvError). ``direct``: set the attributes of a bare
    instance instead of calling ``cls(**kw)`` (only for a plain dataclass, see the module docstring).
    """

    __slots__ = ("_absent", "_bad", "_cls", "_conv_error", "_direct", "_fail", "_fields", "_fold",
                 "_missing", "_nbody", "_parse_ts", "_top", "_zero", "cls", "direct", "top")

    def __init__(self, cls: type, fields: Iterable[FieldSpec], *, top: bool, direct: bool,
                 hooks: dict[str, Any]) -> None:
        specs: list[FieldSpec] = []
        for spec in fields:
            attr, wire, tag, conv, mode, fp, default, factory, env = spec
            if not isinstance(attr, str) or (wire is not None and not isinstance(wire, str)):
                raise TypeError(f"field attr and wire name must be str, got {attr!r}, {wire!r}")
            if tag not in TAGS:
                raise ValueError(f"unknown field tag {tag!r} (one of {TAGS})")
            if mode not in MODES:
                raise ValueError(f"unknown field mode {mode!r} (one of {MODES})")
            if env not in ENVELOPE_SOURCES or (env and not top):
                raise ValueError(f"envelope source {env!r} of field {attr!r} (top={top})")
            if tag in ("int", "float", "call") and not callable(conv):
                raise TypeError(f"field {attr!r} with tag {tag!r} needs a converter")
            specs.append((attr, wire, tag, conv, mode, fp, default, factory, env))
        self.cls = self._cls = cls
        self.top = self._top = top
        self.direct = self._direct = direct
        self._fields: tuple[FieldSpec, ...] = tuple(specs)
        self._nbody = sum(1 for s in specs if s[1] is not None)
        self._conv_error: type[Exception] = hooks["conv_error"]
        self._bad: Callable[[str, Any], Exception] = hooks["bad"]
        self._fail: Callable[..., Any] = hooks["fail"]
        self._fold: Callable[..., None] = hooks["fold"]
        self._absent: Callable[..., None] = hooks["absent"]
        self._missing: Callable[..., Any] = hooks["missing"]
        self._parse_ts: Callable[[str], Any] = hooks["parse_ts"]
        self._zero: Callable[[Any], Any] = hooks["zero"]

    def __repr__(self) -> str:
        return (f"PayloadReader({self._cls.__qualname__}, {len(self._fields)} fields, "
                f"top={self._top}, direct={self._direct})")

    def decode(self, p: Any, id: str, type: str, timestamp: str, correlation_id: str | None) -> Any:
        """The message from its envelope: ``p`` the payload dict (the caller checked it is one),
        the rest the envelope's fields."""
        if p.__class__ is not dict:
            raise TypeError(f"payload must be a dict, not {p.__class__.__name__}")
        return self._read(p, (None, id, type, timestamp, timestamp, correlation_id))

    def decode_envelope(self, env: Any) -> Any:
        """The message from a decoded envelope: ``decode`` of its payload and fields (the compiled
        reader reads a plain ``env.raw_payload`` directly; same values, same errors)."""
        return self.decode(env.payload, env.id, env.type, env.timestamp, env.correlation_id)

    def decode_nested(self, v: Any) -> Any:
        """A nested value: ``v`` must be a dict (else ConvError "expected object")."""
        if v.__class__ is not dict:
            raise self._bad("object", v)
        return self._read(v, None)

    def _read(self, p: dict[str, Any], env: Sequence[Any] | None) -> Any:
        cls = self._cls
        fail = self._fail
        conv_error = self._conv_error
        kw: dict[str, Any] = {}
        n = 0
        for attr, wire, tag, conv, _mode, _fp, _d, _f, src in self._fields:
            if wire is None:
                if src and env is not None:
                    value = env[ENVELOPE_SOURCES.index(src)]
                    if src == "timestamp_dt":
                        kw[attr] = self._parse_ts(value)
                    elif src != "correlationId" or value:
                        kw[attr] = value
                continue
            v = p.get(wire, _M)
            if v is _M:
                continue
            n += 1
            if v is None:
                continue
            if tag == "str":
                if v.__class__ is not str:
                    fail(cls, attr, wire, self._bad("string", v))
            elif tag == "bool":
                if v.__class__ is not bool:
                    fail(cls, attr, wire, self._bad("bool", v))
            elif tag == "any" or (tag == "int" and v.__class__ is int) or (
                    tag == "float" and v.__class__ is float):
                pass
            else:
                try:
                    v = conv(v)
                except conv_error as e:
                    fail(cls, attr, wire, e)
            kw[attr] = v
        if n != len(p):
            self._fold(p, kw, cls, fail)
        for attr, wire, _tag, _conv, mode, fp, _d, _f, _src in self._fields:
            if attr in kw or wire is None:
                continue
            if mode == "required":
                self._absent(p, kw, cls, fp, fail, self._missing)
            elif mode == "zero":
                try:
                    kw[attr] = self._zero(fp)
                except conv_error as e:
                    fail(cls, attr, wire, e)
        if not self._direct:
            return cls(**kw)
        obj: Any = object.__new__(cls)
        for attr, _wire, _tag, _conv, _mode, _fp, default, factory, _src in self._fields:
            v = kw.get(attr, _M)
            if v is _M:
                v = factory() if factory is not None else default
            object.__setattr__(obj, attr, v)  # frozen dataclasses too, as their __init__ does
        return obj


__all__ = ["ENVELOPE_SOURCES", "MODES", "TAGS", "FieldSpec", "PayloadReader"]
