"""Per-class contract plans: type name, kind, and generated encode/decode functions.

A plan is created once per class (on registration or first use) and cached in ``_PLANS``. The
field-level part (wire names, converters from ``typing.get_type_hints``) is built lazily on the
first encode/decode, so forward references resolve and ``__init_subclass__`` (which runs before
``@dataclass``) can register cheaply. Encoders/decoders are generated Python source (like
dataclasses does for ``__init__``): one dict display plus inline type checks, no per-field loops.

Missing keys and ``null`` (Go's nil slices, maps and pointers, its omitempty fields) decode as Go
decodes them: the field keeps its default, or else gets the zero value of its type. Only a field
declared ``wire_field(required=True)`` (dataclasses), named in ``__mmate_required__`` (pydantic), or
declared without a default in a class with ``__mmate_strict__ = True`` refuses a missing key.
"""
from __future__ import annotations

import dataclasses
import datetime as _dt
import inspect
import sys
import typing
from collections.abc import Callable
from typing import Any

from mmate_fast._ext import load
from mmate_fast.contracts import _go_nulls, _types
from mmate_fast.contracts._fields import ENVELOPE_WIRE, FALLBACK, OMITEMPTY, REQUIRED, WIRE, camel_name
from mmate_fast.contracts._kinds import MessageKind
from mmate_fast.errors import ContractError

_env = load("envelope")
_wire = load("wire")
_reader = load("payload_reader")

_MISSING = object()


class FieldPlan:
    """One dataclass field: attribute, wire name, omitempty, converter, default info, and whether
    its payload key is required (``strict``: the class's ``__mmate_strict__`` for a field without
    a default, or ``wire_field(required=True)``)."""

    __slots__ = ("attr", "conv", "fallback", "has_default", "init", "omitempty", "required", "tag", "tp",
                 "wire")

    def __init__(self, f: dataclasses.Field[Any], tp: Any, nested_decoder: Callable[[type], Any],
                 strict: bool = False) -> None:
        meta = f.metadata
        self.attr = f.name
        self.wire: str = meta.get(WIRE) or camel_name(f.name)
        self.omitempty = bool(meta.get(OMITEMPTY, False))
        self.fallback: str | None = meta.get(FALLBACK)
        self.has_default = (f.default is not dataclasses.MISSING
                            or f.default_factory is not dataclasses.MISSING)
        self.required = bool(meta.get(REQUIRED, False)) or (strict and not self.has_default)
        self.init = f.init
        self.tp = tp
        self.tag, self.conv = _types.converter(tp, nested_decoder)

    def zero(self) -> Any:
        """Go's zero value of this field's type (a fresh one: lists are not shared); raises
        ConvError for a type that has none (an Enum without a "" or 0 member, an unknown class)."""
        conv = self.conv
        return None if conv is None else conv(None)

    @property
    def needs_encoding(self) -> bool:
        """False when the annotation guarantees a value the envelope codec takes as it is."""
        return not _is_leaf_annotation(self.tp)


def _is_leaf_annotation(tp: Any) -> bool:
    origin = typing.get_origin(tp)
    if origin is typing.Annotated:
        return _is_leaf_annotation(typing.get_args(tp)[0])
    if origin is None:
        if tp is Any or tp is object or not isinstance(tp, type):
            return False
        if dataclasses.is_dataclass(tp) or _types.is_pydantic_model(tp):
            return False
        return tp not in (list, dict, tuple, set, frozenset)
    if origin in (set, frozenset):
        return False  # sets become lists
    if origin is typing.Literal:
        return True
    args = [a for a in typing.get_args(tp) if a is not Ellipsis and a is not type(None)]
    return all(_is_leaf_annotation(a) for a in args)


def _type_hints(cls: type) -> dict[str, Any]:
    try:
        return typing.get_type_hints(cls)
    except Exception:  # unresolved forward reference: resolve field by field, Any when impossible
        hints: dict[str, Any] = {}
        for klass in reversed(cls.__mro__):
            g = vars(sys.modules.get(klass.__module__, object()))
            for name, ann in inspect.get_annotations(klass).items():
                if isinstance(ann, str):
                    try:
                        ann = eval(ann, g, dict(vars(klass)))
                    except Exception:
                        ann = Any
                hints[name] = ann
        return hints


class ContractPlan:
    """What the codec needs to know about one message class; ``encode``/``decode`` are the hot
    paths (replaced by generated functions on first call)."""

    def __init__(self, cls: type) -> None:
        self.cls = cls
        self.type_name: str = cls.__dict__.get("__mmate_type__") or cls.__name__
        self.kind = MessageKind(getattr(cls, "__mmate_kind__", MessageKind.MESSAGE))
        self.is_generic = bool(cls.__dict__.get("__mmate_generic__", False))
        self.is_pydantic = _types.is_pydantic_model(cls)
        self.is_dataclass = dataclasses.is_dataclass(cls)
        #: a request's reply class (``register(cls, reply=...)``), or None
        self.reply_type: type | None = None
        #: msg -> payload dict (top level: envelope fields excluded)
        self.encode: Callable[[Any], dict[str, Any]] = self._first_encode
        #: (payload, id, type, timestamp string, correlation id) -> instance
        self.decode: Callable[[Any, str, str, str, str | None], Any] = self._first_decode
        #: decoded envelope -> instance: ``decode`` of its payload (a dict, else TypeError) and
        #: fields; the payload reader's ``decode_envelope`` (reads a plain raw payload directly)
        self.decode_envelope: Callable[[Any], Any] = self._first_decode_envelope
        #: msg -> the top-level payload's Go JSON (bytes) from the compiled writer (wire.PayloadWriter),
        #: or None: then ``encode`` + the envelope codec (pydantic, generic, a value it leaves)
        self.payload_json: Callable[[Any], bytes | None] = self._first_payload_json
        #: nested value -> dict with all fields (envelope names included)
        self.encode_nested: Callable[[Any], dict[str, Any]] = self._first_encode_nested
        #: nested JSON object -> instance (raises ConvError)
        self.decode_nested: Callable[[Any], Any] = self._first_decode_nested
        self._fields: list[FieldPlan] | None = None
        self._writer: Any = _MISSING

    def __repr__(self) -> str:
        return f"ContractPlan({self.cls.__qualname__}, type={self.type_name!r}, kind={self.kind.value})"

    # ----------------------------------------------------------------- lazy builders
    def fields(self) -> list[FieldPlan]:
        """Field plans (built once)."""
        if self._fields is None:
            cls = self.cls
            if not self.is_dataclass:
                raise ContractError(f"{cls.__qualname__} is neither a dataclass nor a pydantic model")
            own = inspect.get_annotations(cls)
            if own and "__dataclass_fields__" not in cls.__dict__:
                raise ContractError(f"{cls.__qualname__} declares fields but is not decorated with "
                                    "@dataclass (add @dataclasses.dataclass)")
            hints = _type_hints(cls)
            strict = bool(getattr(cls, "__mmate_strict__", False))
            self._fields = [FieldPlan(f, hints.get(f.name, Any), _nested_decoder, strict)
                            for f in dataclasses.fields(cls)
                            if not (f.name.startswith("_") and not f.metadata.get(WIRE))]
            wires = [fp.wire for fp in self._fields]
            dup = {w for w in wires if wires.count(w) > 1}
            if dup:
                raise ContractError(f"{cls.__qualname__}: several fields map to wire name(s) {sorted(dup)}")
        return self._fields

    def _first_encode(self, msg: Any) -> dict[str, Any]:
        self.encode = self._build_encode(top=True)
        return self.encode(msg)

    def _first_payload_json(self, msg: Any) -> bytes | None:
        self.payload_json = self._build_payload_json()
        return self.payload_json(msg)

    def _first_encode_nested(self, msg: Any) -> dict[str, Any]:
        self.encode_nested = self._build_encode(top=False)
        return self.encode_nested(msg)

    def _first_decode(self, payload: Any, id: str, type: str, ts: str, cid: str | None) -> Any:
        self.decode = self._build_decode_top()
        return self.decode(payload, id, type, ts, cid)

    def _first_decode_envelope(self, env: Any) -> Any:
        self.decode_envelope = self._build_decode_envelope()
        return self.decode_envelope(env)

    def _build_decode_envelope(self) -> Callable[[Any], Any]:
        decode = self.decoder()
        reader = getattr(decode, "__self__", None)
        if isinstance(reader, _reader.PayloadReader) and decode == reader.decode:
            return reader.decode_envelope
        return self._decode_envelope_general

    def _decode_envelope_general(self, env: Any) -> Any:
        """``decode_envelope`` without a payload reader (pydantic, a hand-written codec)."""
        payload = env.payload
        if payload.__class__ is not dict:
            raise TypeError(f"payload must be a dict, not {payload.__class__.__name__}")
        return self.decode(payload, env.id, env.type, env.timestamp, env.correlation_id)

    def decoder(self) -> Callable[[Any, str, str, str, str | None], Any]:
        """``decode`` built (on first use it is a builder that replaces itself): a caller may keep
        it for a batch of messages (the streams consumer keeps it for a chunk)."""
        if self.decode == self._first_decode:
            self.decode = self._build_decode_top()
        return self.decode

    def _first_decode_nested(self, value: Any) -> Any:
        self.decode_nested = self._build_decode_nested()
        return self.decode_nested(value)

    # ----------------------------------------------------------------- encode
    def _build_encode(self, top: bool) -> Callable[[Any], dict[str, Any]]:
        if self.is_pydantic:
            return _pydantic_encoder(self.cls, top)
        if self.is_generic:
            return _generic_encode
        fields = [f for f in self.fields() if not (top and f.wire in ENVELOPE_WIRE)]
        ns: dict[str, Any] = {"_enc": _encode_any}
        lines = ["def encode(m):"]

        def expr(f: FieldPlan) -> str:
            e = f"m.{f.attr}"
            if f.fallback:
                e = f"(m.{f.attr} or m.{f.fallback})"
            return f"_enc({e})" if f.needs_encoding else e

        always = [f for f in fields if not f.omitempty]
        lines.append("    d = {" + ", ".join(f"{f.wire!r}: {expr(f)}" for f in always) + "}")
        for f in fields:
            if f.omitempty:
                lines.append(f"    v = m.{f.attr}")
                lines.append(f"    if v: d[{f.wire!r}] = {'_enc(v)' if f.needs_encoding else 'v'}")
        lines.append("    return d")
        return _compile(lines, ns, "encode", self.cls)

    def use_codec(self, encode: Callable[[Any], dict[str, Any]],
                  decode: Callable[[Any, str, str, str, str | None], Any]) -> None:
        """Give the class a hand-written payload codec instead of the generated one (e.g. a Go type
        whose key order or omissions the generated plan cannot express). The compiled payload writer
        is turned off too: it writes from the attributes and would bypass ``encode``."""
        self.encode = encode
        self.decode = decode
        self.decode_envelope = self._decode_envelope_general
        self.payload_json = _no_payload_json
        if self._writer is not _MISSING and self._writer is not None:
            self._writer.disabled = True  # message templates may have cached it
        self._writer = None

    def payload_writer(self) -> Any:
        """The class's compiled payload writer (wire.PayloadWriter: same bytes as ``encode`` +
        encode_json), or None (pydantic, generic, a class the general path must diagnose)."""
        w = self._writer
        if w is _MISSING:
            w = self._writer = self._build_payload_writer()
        return w

    def _build_payload_writer(self) -> Any:
        if self.is_pydantic or self.is_generic:
            return None
        try:
            fields = [(f.attr, f.wire, f.omitempty, f.fallback, not f.needs_encoding)
                      for f in self.fields() if f.wire not in ENVELOPE_WIRE]
            return _wire.PayloadWriter(fields, _encode_any)
        except Exception:  # the general path raises the class's real error
            return None

    def _build_payload_json(self) -> Callable[[Any], bytes | None]:
        writer = self.payload_writer()
        return _no_payload_json if writer is None else writer.encode

    # ----------------------------------------------------------------- decode
    def _build_decode_top(self) -> Callable[[Any, str, str, str, str | None], Any]:
        if self.is_pydantic:
            return _pydantic_top_decoder(self.cls)
        reader = self.payload_reader(top=True)
        if reader is not None:
            return reader.decode
        return self.generated_decoder(top=True)

    def _build_decode_nested(self) -> Callable[[Any], Any]:
        if self.is_pydantic:
            return _pydantic_nested_decoder(self.cls)
        reader = self.payload_reader(top=False)
        if reader is not None:
            return reader.decode_nested
        return self.generated_decoder(top=False)

    def generated_decoder(self, top: bool) -> Callable[..., Any]:
        """The general decoder of a dataclass (generated Python): what the payload reader must
        equal, and the path when no reader can be built. ``top``: (payload, id, type, timestamp,
        correlation id) -> instance; else (nested value) -> instance."""
        if not top:
            ns: dict[str, Any] = {}
            src = self._decode_source(self.fields(), ns, top=False, pre=["kw = {}"],
                                      signature="def decode(p):")
            return _compile(src, ns, "decode", self.cls)
        fields = self.fields()
        env_fields = {f.wire: f for f in fields if f.wire in ENVELOPE_WIRE and f.init}
        body = [f for f in fields if f.wire not in ENVELOPE_WIRE]
        ns = {"_parse_ts": _parse_envelope_ts}
        pre = ["kw = {}"]
        if "id" in env_fields:
            pre.append(f"kw[{env_fields['id'].attr!r}] = _id")
        if "type" in env_fields:
            pre.append(f"kw[{env_fields['type'].attr!r}] = _type")
        if "timestamp" in env_fields:
            f = env_fields["timestamp"]
            if _wants_datetime(f.tp):
                pre.append(f"kw[{f.attr!r}] = _parse_ts(_ts)")
            else:
                pre.append(f"kw[{f.attr!r}] = _ts")
        if "correlationId" in env_fields:
            pre.append(f"if _cid: kw[{env_fields['correlationId'].attr!r}] = _cid")
        src = self._decode_source(body, ns, top=True, pre=pre,
                                  signature="def decode(p, _id, _type, _ts, _cid):")
        return _compile(src, ns, "decode", self.cls)

    def payload_reader(self, top: bool) -> Any:
        """The class's payload reader (``payload_reader.PayloadReader``, compiled when the extensions
        are): ``top`` for the message itself, else for a nested value. None for a pydantic model."""
        if self.is_pydantic:
            return None
        fields = self.fields()
        plans = {f.attr: f for f in fields if f.init}
        body_plans = [f for f in fields if f.init and not (top and f.wire in ENVELOPE_WIRE)]
        direct = _plain_dataclass(self.cls)
        specs: list[tuple[Any, ...]] = []
        for df in dataclasses.fields(self.cls):
            if not df.init:
                continue
            default = df.default if df.default is not dataclasses.MISSING else None
            factory = df.default_factory if df.default_factory is not dataclasses.MISSING else None
            has_default = df.default is not dataclasses.MISSING or factory is not None
            fp = plans.get(df.name)
            if fp is None:  # a private field: never decoded, its default applies
                direct = direct and has_default
                specs.append((df.name, None, "any", None, "default", None, default, factory, ""))
            elif top and fp.wire in ENVELOPE_WIRE:
                src = fp.wire
                if src == "timestamp" and _wants_datetime(fp.tp):
                    src = "timestamp_dt"
                specs.append((df.name, None, "any", None, "default", fp, default, factory, src))
            else:
                mode = "required" if fp.required else "default" if fp.has_default else "zero"
                specs.append((df.name, fp.wire, fp.tag, fp.conv, mode, fp, default, factory, ""))
        hooks = {"conv_error": _types.ConvError, "bad": _types.bad,
                 "fail": _fail_top if top else _fail_nested, "fold": _make_fold(body_plans),
                 "absent": _absent, "missing": _missing_top if top else _missing_nested,
                 "parse_ts": _parse_envelope_ts, "zero": FieldPlan.zero}
        return _reader.PayloadReader(self.cls, specs, top=top, direct=direct, hooks=hooks)

    def _decode_source(self, fields: list[FieldPlan], ns: dict[str, Any], top: bool, pre: list[str],
                       signature: str) -> list[str]:
        cls = self.cls
        fields = [f for f in fields if f.init]
        ns.update({"_cls": cls, "_M": _MISSING, "_ConvError": _types.ConvError, "_bad": _types.bad,
                   "_c_int": _types.c_int, "_c_float": _types.c_float, "_fail": _fail_top if top else
                   _fail_nested, "_fold": _make_fold(fields), "_missing": _missing_top if top else
                   _missing_nested, "_absent": _absent, "_dict": dict})
        lines = [signature]
        if not top:
            lines.append("    if p.__class__ is not _dict: raise _bad('object', p)")
        lines += ["    " + s for s in pre]
        lines.append("    n = 0")
        for i, f in enumerate(fields):
            w = repr(f.wire)
            lines.append(f"    v = p.get({w}, _M)")
            lines.append("    if v is not _M:")
            lines.append("        n += 1")
            lines.append("        if v is not None:")
            ind = "            "
            if f.tag == "any":
                lines.append(f"{ind}kw[{f.attr!r}] = v")
                continue
            if f.tag == "str":
                lines.append(f"{ind}if v.__class__ is not str:")
                lines.append(f"{ind}    _fail(_cls, {f.attr!r}, {w}, _bad('string', v))")
            elif f.tag == "bool":
                lines.append(f"{ind}if v.__class__ is not bool:")
                lines.append(f"{ind}    _fail(_cls, {f.attr!r}, {w}, _bad('bool', v))")
            else:
                ns[f"_c{i}"] = f.conv
                if f.tag == "int":
                    lines.append(f"{ind}if v.__class__ is not int:")
                    ind2 = ind + "    "
                elif f.tag == "float":
                    lines.append(f"{ind}if v.__class__ is not float:")
                    ind2 = ind + "    "
                else:
                    ind2 = ind
                lines.append(f"{ind2}try: v = _c{i}(v)")
                lines.append(f"{ind2}except _ConvError as e: _fail(_cls, {f.attr!r}, {w}, e)")
            lines.append(f"{ind}kw[{f.attr!r}] = v")
        lines.append("    if n != len(p): _fold(p, kw, _cls, _fail)")
        # not decoded (missing or null): the default, else Go's zero; a required key must be there
        for i, f in enumerate(fields):
            if f.required:
                ns[f"_f{i}"] = f
                lines.append(f"    if {f.attr!r} not in kw: _absent(p, kw, _cls, _f{i}, _fail, _missing)")
            elif not f.has_default:
                ns[f"_z{i}"] = f.zero
                lines.append(f"    if {f.attr!r} not in kw:")
                lines.append(f"        try: kw[{f.attr!r}] = _z{i}()")
                lines.append(f"        except _ConvError as e: _fail(_cls, {f.attr!r}, {f.wire!r}, e)")
        lines.append("    return _cls(**kw)")
        return lines

    # ----------------------------------------------------------------- zero value
    def zero(self) -> Any:
        """Go's zero value of the class (what a ``null`` nested object decodes to): every field
        at its default or the zero of its type, strictness aside. Raises ConvError."""
        cls = self.cls
        if self.is_pydantic:
            return _pydantic_validate(cls, _go_nulls.model_nulls(cls, False, _nested_decoder)({}))
        if cls in _ZEROING:
            raise _types.ConvError(f"is null, and {cls.__qualname__} contains itself without Optional: "
                                   "declare the field Optional (``X | None``)")
        _ZEROING.add(cls)
        try:
            kw = {}
            for f in self.fields():
                if f.init and not f.has_default:
                    try:
                        kw[f.attr] = f.zero()
                    except _types.ConvError as e:
                        raise e.at(f".{f.wire}") from None
            try:
                return cls(**kw)
            except (TypeError, ValueError) as e:
                raise _types.ConvError(f"is null, and {cls.__qualname__}() cannot be built from zero values: "
                                       f"{e}") from None
        finally:
            _ZEROING.discard(cls)


#: classes whose zero value is being built (a class that contains itself has none)
_ZEROING: set[type] = set()


def _plain_dataclass(cls: type) -> bool:
    """True when setting the attributes of a bare instance (``object.__setattr__`` in field
    order) builds what ``cls(**kw)`` builds: the ``__init__`` generated by dataclasses, no
    ``__post_init__``, no ``__new__``/``__setattr__``/metaclass ``__call__`` of its own (frozen
    dataclasses aside: their ``__init__`` bypasses ``__setattr__`` too), no ``init=False`` fields
    (their ``__init__`` sets them) and instances with a ``__dict__``."""
    init = cls.__dict__.get("__init__") or getattr(cls, "__init__", None)
    code = getattr(init, "__code__", None)
    if code is None or code.co_filename != "<string>" or code.co_name != "__init__":
        return False
    params = getattr(cls, "__dataclass_params__", None)
    if params is None or not params.init or hasattr(cls, "__post_init__"):
        return False
    if cls.__new__ is not object.__new__ or type(cls).__call__ is not type.__call__:
        return False
    if cls.__setattr__ is not object.__setattr__ and not params.frozen:
        return False
    if any(not f.init for f in dataclasses.fields(cls)):
        return False
    try:
        return hasattr(object.__new__(cls), "__dict__")
    except TypeError:
        return False


def _wants_datetime(tp: Any) -> bool:
    if tp is _dt.datetime:
        return True
    return _dt.datetime in typing.get_args(tp)


_ts_cache: list[tuple[str, _dt.datetime | None]] = [("", None)]


def _parse_envelope_ts(s: str) -> _dt.datetime | None:
    """Envelope timestamp -> aware datetime; a one-entry cache (envelope times are whole seconds,
    so consecutive messages share the string; the (string, value) pair is swapped atomically).
    Unparsable -> None (Go ignores the error too)."""
    last = _ts_cache[0]
    if s == last[0]:
        return last[1]
    try:
        dt: _dt.datetime = _env.parse_timestamp(s)
    except (ValueError, TypeError):
        return None
    _ts_cache[0] = (s, dt)
    return dt


def _fail_top(cls: type, attr: str, wire: str, e: _types.ConvError) -> typing.NoReturn:
    raise ContractError(f"{cls.__qualname__}.{attr} (payload key {wire!r}){e.path}: {e.reason}") from None


def _fail_nested(cls: type, attr: str, wire: str, e: _types.ConvError) -> typing.NoReturn:
    raise e.at(f".{wire}")


_STRICT_HINT = "(the class asks for it: __mmate_strict__ or a required field)"


def _missing_top(cls: type, attr: str, wire: str) -> typing.NoReturn:
    raise ContractError(f"{cls.__qualname__}.{attr}: required payload key {wire!r} is missing {_STRICT_HINT}")


def _missing_nested(cls: type, attr: str, wire: str) -> typing.NoReturn:
    raise _types.ConvError(f"required key {wire!r} ({cls.__qualname__}.{attr}) is missing {_STRICT_HINT}")


def _absent(p: dict[str, Any], kw: dict[str, Any], cls: type, f: FieldPlan, fail: Callable[..., Any],
            missing: Callable[..., Any]) -> None:
    """A required field that was not decoded: its key present as ``null`` (exact or, like Go,
    case-insensitively) gives the default or the zero value; a missing key is refused."""
    wire = f.wire
    if wire not in p:
        low = wire.lower()
        if not any(k.lower() == low for k in p):
            missing(cls, f.attr, wire)
    if not f.has_default:
        try:
            kw[f.attr] = f.zero()
        except _types.ConvError as e:
            fail(cls, f.attr, wire, e)


def _make_fold(fields: list[FieldPlan]) -> Callable[..., None]:
    """The slow path for payload keys that did not match a wire name exactly: match them
    case-insensitively like Go (``OrderId`` fills ``orderId``); an exact key wins."""
    exact = {f.wire for f in fields}
    folded = {f.wire.lower(): f for f in fields}

    def fold(p: dict[str, Any], kw: dict[str, Any], cls: type, fail: Callable[..., Any]) -> None:
        for k, v in p.items():
            if k in exact:
                continue
            f = folded.get(k.lower())
            if f is None or f.wire in p:
                continue
            if v is None:
                continue
            if f.conv is not None:
                try:
                    v = f.conv(v)
                except _types.ConvError as e:
                    fail(cls, f.attr, k, e)
            kw[f.attr] = v
    return fold


def _compile(lines: list[str], ns: dict[str, Any], name: str, cls: type) -> Any:
    src = "\n".join(lines)
    code = compile(src, f"<mmate contract {name} {cls.__module__}.{cls.__qualname__}>", "exec")
    exec(code, ns)
    fn = ns[name]
    fn.__source__ = src
    return fn


# --------------------------------------------------------------------------- nested / any values
_PLANS: dict[type, ContractPlan] = {}


def plan_for(cls: type) -> ContractPlan:
    """The cached plan of a class (created on first use)."""
    p = _PLANS.get(cls)
    if p is None:
        p = _PLANS[cls] = ContractPlan(cls)
    return p


def _nested_decoder(tp: type) -> Callable[[Any], Any]:
    def conv(v: Any) -> Any:
        if v is None:  # Go: a nil pointer or null object leaves the zero struct
            return plan_for(tp).zero()
        return plan_for(tp).decode_nested(v)
    return conv


def _encode_nested(v: Any) -> Any:
    return plan_for(v.__class__).encode_nested(v)


def _encode_any(v: Any) -> Any:
    return _types.encode_value(v, _encode_nested)


def _no_payload_json(msg: Any) -> None:
    return None


def _generic_encode(msg: Any) -> dict[str, Any]:
    return msg.payload


# --------------------------------------------------------------------------- pydantic
def _pydantic_fields(cls: Any) -> dict[str, str]:
    """field name -> alias used on the wire."""
    out = {}
    for name, info in cls.model_fields.items():
        out[name] = info.serialization_alias or info.alias or name
    return out


def _pydantic_encoder(cls: Any, top: bool) -> Callable[[Any], dict[str, Any]]:
    names = _pydantic_fields(cls)
    exclude = {n for n, w in names.items() if w in ENVELOPE_WIRE} if top else set()
    omit = tuple(getattr(cls, "__mmate_omitempty__", ()))
    omit_wire = tuple(names.get(n, n) for n in omit)

    def encode(m: Any) -> dict[str, Any]:
        d: dict[str, Any] = m.model_dump(by_alias=True, exclude=exclude)
        for w in omit_wire:
            if w in d and not d[w]:
                del d[w]
        return d
    return encode


def _pydantic_validate(cls: Any, data: Any) -> Any:
    try:
        return cls.model_validate(data)
    except ValueError as e:  # pydantic.ValidationError is a ValueError
        raise _types.ConvError(f"does not validate as {cls.__qualname__}: {e}") from None


def _pydantic_top_decoder(cls: Any) -> Callable[[Any, str, str, str, str | None], Any]:
    names = _pydantic_fields(cls)
    env = {w: n for n, w in names.items() if w in ENVELOPE_WIRE}
    go_nulls = _go_nulls.model_nulls(cls, True, _nested_decoder)

    def decode(p: Any, _id: str, _type: str, _ts: str, _cid: str | None) -> Any:
        data = dict(p)
        for w in ENVELOPE_WIRE:
            data.pop(w, None)
        try:
            data = go_nulls(data)
        except _types.ConvError as e:
            raise ContractError(f"{cls.__qualname__}{e.path}: {e.reason}") from None
        if "id" in env:
            data[env["id"]] = _id
        if "type" in env:
            data[env["type"]] = _type
        if "timestamp" in env:
            data[env["timestamp"]] = _parse_envelope_ts(_ts)
        if "correlationId" in env and _cid:
            data[env["correlationId"]] = _cid
        try:
            return _pydantic_validate(cls, data)
        except _types.ConvError as e:
            raise ContractError(str(e)) from None
    return decode


def _pydantic_nested_decoder(cls: Any) -> Callable[[Any], Any]:
    go_nulls = _go_nulls.model_nulls(cls, False, _nested_decoder)

    def decode(v: Any) -> Any:
        if v.__class__ is not dict:
            raise _types.bad("object", v)
        return _pydantic_validate(cls, go_nulls(v))
    return decode


__all__ = ["ENVELOPE_WIRE", "ContractPlan", "plan_for"]
