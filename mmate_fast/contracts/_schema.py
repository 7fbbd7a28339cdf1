"""JSON Schema of a contract's payload, and cached validators for it.

The schema describes the **payload** object of the envelope exactly as it travels (wire-protocol.md
§3.3): camelCase wire names, the base fields of the kind (``targetService``, ``replyTo``,
``aggregateId``, ``sequence``, ``success`` ...) as top-level properties (not Go's nested
``baseCommand``/``baseMessage`` objects, which do not match the real JSON), without ``id``, ``type``,
``timestamp`` and ``correlationId`` (they travel in the envelope). A field is required unless it is
``omitempty``. Values are described as the envelope codec writes them and Go writes them:
datetime -> RFC 3339 string (``date-time``), date -> ``date``, UUID -> ``uuid`` string, Decimal ->
number, timedelta -> integer nanoseconds (Go ``time.Duration``), bytes -> base64 string; lists,
dicts and bytes also accept ``null`` (Go's nil slices and maps). Unknown payload keys are allowed
(Go ignores them). Nested classes go into ``$defs`` (``definitions`` in draft-07) and are referenced.
A class with a codec of its own declares its schema (without ``$schema``/``title``) in
``__mmate_schema__``: a dict, or a function of the draft; otherwise it has none (ContractError).

Validation uses the ``jsonschema`` package (extra ``schema``); formats are checked with its format
checker (``date-time`` needs ``rfc3339-validator`` installed, else it is not checked).
"""
from __future__ import annotations

import collections.abc as cabc
import copy
import dataclasses
import datetime as _dt
import enum
import types
import typing
import uuid
from collections.abc import Callable
from decimal import Decimal
from typing import Any, Literal

from mmate_fast.contracts._fields import ENVELOPE_WIRE
from mmate_fast.contracts._plan import plan_for
from mmate_fast.contracts._schema_check import compile_check
from mmate_fast.contracts._types import is_pydantic_model
from mmate_fast.errors import ConfigurationError, ContractError

Draft = Literal["2020-12", "draft-07"]

_SCHEMA_URI = {"2020-12": "https://json-schema.org/draft/2020-12/schema",
               "draft-07": "http://json-schema.org/draft-07/schema#"}
_DEFS = {"2020-12": "$defs", "draft-07": "definitions"}

#: the text form both codecs write (draft-07 has no "uuid" format, so the pattern checks it there)
_UUID_PATTERN = "^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$"

_CACHE: dict[tuple[type, str], dict[str, Any]] = {}
_VALIDATORS: dict[tuple[type, str], Any] = {}
_FAST: dict[tuple[type, str], Callable[[Any], bool] | None] = {}
_NO_CHECK: Any = object()


def _check_draft(draft: str) -> None:
    if draft not in _SCHEMA_URI:
        raise ConfigurationError(f"draft must be '2020-12' or 'draft-07', got {draft!r}")


def json_schema(cls: type, draft: Draft = "2020-12") -> dict[str, Any]:
    """The JSON Schema (a fresh dict) of the payload of contract class ``cls`` (dataclass message or
    pydantic model): ``title`` is its wire type name. ``draft="draft-07"`` gives the dialect Go
    announces. Raises ContractError for a class that is not a contract."""
    _check_draft(draft)
    key = (cls, draft)
    schema = _CACHE.get(key)
    if schema is None:
        schema = _CACHE[key] = _Builder(draft).top(cls)
    return copy.deepcopy(schema)


def schema_validator(cls: type, draft: Draft = "2020-12") -> Any:
    """A compiled ``jsonschema`` validator for the payload of ``cls`` (built once per class and
    draft, with the format checker). Raises ConfigurationError when ``jsonschema`` is missing."""
    key = (cls, draft)
    v = _VALIDATORS.get(key)
    if v is None:
        try:
            import jsonschema
        except ImportError:  # pragma: no cover - depends on the environment
            raise ConfigurationError("schema validation needs the jsonschema package: "
                                     "pip install 'mmate-fast[schema]'") from None
        schema = json_schema(cls, draft)
        vcls = jsonschema.validators.validator_for(schema)
        vcls.check_schema(schema)
        v = _VALIDATORS[key] = vcls(schema, format_checker=vcls.FORMAT_CHECKER)
    return v


def schema_errors(cls: type, payload: Any, draft: Draft = "2020-12") -> str | None:
    """None when ``payload`` (decoded JSON) fits the schema of ``cls``, else the validator's message
    of the most relevant error with where it is (``/items/0/price: 'x' is not of type 'number'``).

    A compiled pre-check (``_schema_check``) accepts the payloads it is sure of; ``jsonschema``
    decides everything else."""
    key = (cls, draft)
    fast = _FAST.get(key, _NO_CHECK)
    if fast is _NO_CHECK:
        v = schema_validator(cls, draft)
        fast = _FAST[key] = compile_check(json_schema(cls, draft), v.format_checker.conforms)
    if fast is not None and fast(payload):
        return None
    v = schema_validator(cls, draft)
    if v.is_valid(payload):
        return None
    from jsonschema.exceptions import best_match

    err = best_match(v.iter_errors(payload))
    if err is None:  # pragma: no cover - is_valid said otherwise
        return "invalid"
    where = "/" + "/".join(str(p) for p in err.absolute_path)
    return f"{where}: {err.message}"


def clear_schema_cache() -> None:
    """Forget cached schemas and validators (after redefining a class in place)."""
    _CACHE.clear()
    _VALIDATORS.clear()
    _FAST.clear()


# --------------------------------------------------------------------------- building
class _Builder:
    """Builds one top-level schema; nested classes collected in ``defs``."""

    def __init__(self, draft: str) -> None:
        self.draft = draft
        self.defs: dict[str, dict[str, Any]] = {}
        self.names: dict[type, str] = {}

    def top(self, cls: type) -> dict[str, Any]:
        if not isinstance(cls, type) or not (dataclasses.is_dataclass(cls) or is_pydantic_model(cls)):
            raise ContractError(f"json_schema() needs a dataclass or pydantic message class, got {cls!r}")
        plan = plan_for(cls)
        if plan.is_generic:
            raise ContractError("GenericMessage has no schema: its payload is whatever was received")
        name = plan.type_name
        given = cls.__dict__.get("__mmate_schema__")
        if given is not None:
            declared: dict[str, Any] = {"$schema": _SCHEMA_URI[self.draft], "title": name,
                                        "description": f"Schema for {name} message"}
            declared.update(given(self.draft) if callable(given) else copy.deepcopy(given))
            return declared
        if _custom_codec(plan):
            raise ContractError(f"{cls.__qualname__} has a codec of its own (its fields are not its "
                                "payload): give the class a __mmate_schema__ (a schema dict, or a function "
                                "of the draft)")
        body = self._object(cls, top=True)
        out: dict[str, Any] = {"$schema": _SCHEMA_URI[self.draft], "title": name,
                               "description": f"Schema for {name} message"}
        out.update(body)
        if self.defs:
            out[_DEFS[self.draft]] = dict(sorted(self.defs.items()))
        return out

    def _object(self, cls: type, top: bool) -> dict[str, Any]:
        props: dict[str, Any] = {}
        required: list[str] = []
        for wire, tp, omitempty in _fields(cls):
            if top and wire in ENVELOPE_WIRE:
                continue
            props[wire] = self.of(tp)
            if not omitempty:
                required.append(wire)
        out: dict[str, Any] = {"type": "object", "properties": props}
        if required:
            out["required"] = required
        return out

    def _ref(self, cls: type) -> dict[str, Any]:
        name = self.names.get(cls)
        if name is None:
            base = plan_for(cls).type_name
            name, n = base, 2
            while name in self.defs:
                name, n = f"{base}{n}", n + 1
            self.names[cls] = name
            self.defs[name] = {}  # placeholder: recursion refers to it
            self.defs[name] = {"title": base, **self._object(cls, top=False)}
        return {"$ref": f"#/{_DEFS[self.draft]}/{name}"}

    def of(self, tp: Any) -> dict[str, Any]:
        """The schema of one annotation."""
        origin = typing.get_origin(tp)
        if origin is typing.Annotated:
            return self.of(typing.get_args(tp)[0])
        if tp is Any or tp is object or isinstance(tp, typing.TypeVar):
            return {}
        if origin is None and isinstance(tp, type):
            return self._class(tp)
        args = typing.get_args(tp)
        if origin is typing.Union or origin is types.UnionType:
            rest = [a for a in args if a is not type(None)]
            schemas = [self.of(a) for a in rest]
            if len(rest) < len(args):
                schemas.append({"type": "null"})
            return _any_of(schemas)
        if origin is typing.Literal:
            return {"enum": list(args)}
        if origin in (list, set, frozenset, cabc.Sequence, cabc.MutableSequence, cabc.Iterable,
                      cabc.Collection, cabc.Set, cabc.MutableSet):
            out: dict[str, Any] = {"type": ["array", "null"]}
            if args:
                out["items"] = self.of(args[0])
            return out
        if origin is tuple:
            if len(args) == 2 and args[1] is Ellipsis:
                return {"type": ["array", "null"], "items": self.of(args[0])}
            items = [] if args == ((),) else [self.of(a) for a in args]
            out = {"type": "array", "minItems": len(items), "maxItems": len(items)}
            if self.draft == "draft-07":
                out.update(items=items, additionalItems=False)
            else:
                out.update(prefixItems=items, items=False)
            return out
        if origin in (dict, cabc.Mapping, cabc.MutableMapping):
            out = {"type": ["object", "null"]}
            if len(args) > 1:
                out["additionalProperties"] = self.of(args[1])
            return out
        if isinstance(origin, type):
            return self.of(origin)
        return {}

    def _class(self, tp: type) -> dict[str, Any]:
        if issubclass(tp, enum.Enum):
            values = [m.value for m in tp]
            return {"enum": values}
        if tp is str:
            return {"type": "string"}
        if tp is bool:
            return {"type": "boolean"}
        if tp is int:
            return {"type": "integer"}
        if tp is float or tp is Decimal:
            return {"type": "number"}
        if tp is _dt.datetime:
            return {"type": "string", "format": "date-time"}
        if tp is _dt.date:
            return {"type": "string", "format": "date"}
        if tp is _dt.timedelta:
            return {"type": "integer", "description": "duration in nanoseconds (Go time.Duration)"}
        if tp is bytes or tp is bytearray:
            return {"type": ["string", "null"], "contentEncoding": "base64"}
        if tp is uuid.UUID:
            return {"type": "string", "format": "uuid", "pattern": _UUID_PATTERN}
        if tp is type(None):
            return {"type": "null"}
        if dataclasses.is_dataclass(tp) or is_pydantic_model(tp):
            return self._ref(tp)
        if tp in (list, set, frozenset, tuple):
            return {"type": ["array", "null"]}
        if tp is dict:
            return {"type": ["object", "null"]}
        return {}


def _custom_codec(plan: Any) -> bool:
    """True when a dataclass's plan encodes with a function installed by hand (not the generated
    codec): its fields then do not describe its payload (StageFlow's envelopes, for one)."""
    if plan.is_pydantic or not plan.is_dataclass:
        return False
    enc = plan.encode
    return getattr(enc, "__func__", None) is not type(plan)._first_encode and not hasattr(enc, "__source__")


def _any_of(schemas: list[dict[str, Any]]) -> dict[str, Any]:
    """``anyOf`` of the schemas, folded into one ``type`` list when they are all plain types."""
    if any(s == {} for s in schemas):
        return {}
    if all(set(s) == {"type"} for s in schemas):
        kinds: list[str] = []
        for s in schemas:
            for t in s["type"] if isinstance(s["type"], list) else [s["type"]]:
                if t not in kinds:
                    kinds.append(t)
        return {"type": kinds[0] if len(kinds) == 1 else kinds}
    if len(schemas) == 1:
        return schemas[0]
    return {"anyOf": schemas}


def _fields(cls: type) -> list[tuple[str, Any, bool]]:
    """(wire name, annotation, optional) of every field the encoder writes, in declaration order."""
    plan = plan_for(cls)
    if plan.is_pydantic:
        omit = set(getattr(cls, "__mmate_omitempty__", ()))
        out = []
        for name, info in cls.model_fields.items():  # type: ignore[attr-defined]
            if info.exclude:
                continue
            wire = info.serialization_alias or info.alias or name
            out.append((wire, info.annotation, name in omit))
        return out
    # a field that copies another when empty (ErrorReply.error) is not sent by every Go sender
    # (the request/reply server's error reply has no "error"): not required
    return [(f.wire, f.tp, f.omitempty or f.fallback is not None) for f in plan.fields()]


__all__ = ["Draft", "clear_schema_cache", "json_schema", "schema_errors", "schema_validator"]
