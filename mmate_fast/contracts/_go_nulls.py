"""Go's ``null`` for pydantic models: the JSON a model validates is first given Go's meaning of
``null`` and of a missing key, since pydantic would refuse both for a field typed ``str``/``list``.

What Go's encoding/json does, and so what this does before ``model_validate``: a ``null`` (a Go nil
slice, map or pointer) or a missing key (Go's ``omitempty``) leaves a field at its default, or at the
zero value of its type when it has none (``""``, 0, False, [], {}, the zero struct, ...; None for an
Optional field). The same holds for ``null`` elements of lists and values of dicts, and for nested
models. A field named in the class's ``__mmate_required__``, or any field without a default when the
class sets ``__mmate_strict__ = True``, refuses a missing key instead (``null`` is still the zero).
Zero values come from the dataclass converters (``conv(None)``, see ``_types``), so both contract
kinds agree on them.
"""
from __future__ import annotations

import collections.abc as cabc
import types
import typing
from collections.abc import Callable
from typing import Any

from mmate_fast.contracts import _types
from mmate_fast.contracts._fields import ENVELOPE_WIRE

Fix = Callable[[Any], Any]
NestedDecoder = Callable[[type], Callable[[Any], Any]]

_MODELS: dict[tuple[type, bool], _ModelNulls] = {}


def model_nulls(cls: type, top: bool, nested_decoder: NestedDecoder) -> Fix:
    """The function giving a JSON object Go's nulls for pydantic model ``cls`` (``top``: the
    message itself, whose envelope fields are left alone). Returns a new dict when it changes one;
    raises ConvError for a missing required key or a null without a zero value."""
    fixer = _MODELS.get((cls, top))
    if fixer is None:
        fixer = _MODELS[(cls, top)] = _ModelNulls(cls, top, nested_decoder)
    return fixer


def _admits_none(tp: Any) -> bool:
    if tp is Any or tp is object or tp is None or tp is type(None) or isinstance(tp, typing.TypeVar):
        return True
    origin = typing.get_origin(tp)
    if origin is typing.Annotated:
        return _admits_none(typing.get_args(tp)[0])
    if origin is typing.Union or origin is types.UnionType:
        return any(_admits_none(a) for a in typing.get_args(tp))
    return False


class _Slot:
    """What to do with one value of annotation ``tp``: keep ``null`` (Optional/Any) or replace it
    by the zero, and how to fix a non-null value inside (``sub``; None: nothing to do)."""

    __slots__ = ("admits_none", "sub", "zero")

    def __init__(self, tp: Any, nested_decoder: NestedDecoder) -> None:
        self.admits_none = _admits_none(tp)
        conv = _types.converter(tp, nested_decoder)[1]
        self.zero: Callable[[], Any] = (lambda: None) if conv is None else (lambda: conv(None))
        self.sub = _value_fixer(tp, nested_decoder)


def _value_fixer(tp: Any, nested_decoder: NestedDecoder) -> Fix | None:
    """How to give Go's nulls to the inside of a non-null value of ``tp`` (None: nothing inside)."""
    origin = typing.get_origin(tp)
    if origin is typing.Annotated:
        return _value_fixer(typing.get_args(tp)[0], nested_decoder)
    args = typing.get_args(tp)
    if origin is typing.Union or origin is types.UnionType:
        rest = [a for a in args if a is not type(None)]
        return _value_fixer(rest[0], nested_decoder) if len(rest) == 1 else None
    if origin is None:
        if _types.is_pydantic_model(tp):
            return model_nulls(tp, False, nested_decoder)
        return None
    if origin is tuple and len(args) == 2 and args[1] is Ellipsis:
        return _container_fixer(_Slot(args[0], nested_decoder), list)
    if origin in (list, set, frozenset, cabc.Sequence, cabc.MutableSequence, cabc.Set, cabc.MutableSet,
                  cabc.Iterable, cabc.Collection):
        return _container_fixer(_Slot(args[0], nested_decoder), list) if args else None
    if origin in (dict, cabc.Mapping, cabc.MutableMapping) and len(args) == 2:
        return _container_fixer(_Slot(args[1], nested_decoder), dict)
    return None


def _container_fixer(slot: _Slot, kind: type) -> Fix | None:
    """Go's nulls for the items of a JSON array (``kind`` list) or the values of an object (dict)."""
    if slot.admits_none and slot.sub is None:
        return None
    sub, keep_none, zero = slot.sub, slot.admits_none, slot.zero

    def one(x: Any) -> Any:
        if x is None:
            return None if keep_none else zero()
        return x if sub is None else sub(x)

    # not the container (the validator says what is wrong), or nothing to do: the value as it is
    def fix_list(v: Any) -> Any:
        if v.__class__ is not list or (sub is None and None not in v):
            return v
        return [one(x) for x in v]

    def fix_dict(v: Any) -> Any:
        if v.__class__ is not dict or (sub is None and None not in v.values()):
            return v
        return {k: one(x) for k, x in v.items()}
    return fix_list if kind is list else fix_dict


class _Field:
    __slots__ = ("alias", "name", "required", "slot", "strict")

    def __init__(self, name: str, alias: str, required: bool, strict: bool, slot: _Slot) -> None:
        self.name = name
        self.alias = alias
        self.required = required
        self.strict = strict
        self.slot = slot


class _ModelNulls:
    """Go's nulls for one pydantic model (fields resolved on first use: models may refer to
    themselves)."""

    def __init__(self, cls: Any, top: bool, nested_decoder: NestedDecoder) -> None:
        self.cls = cls
        self.top = top
        self.nested_decoder = nested_decoder
        self._fields: list[_Field] | None = None
        self._by_name = bool(getattr(cls, "model_config", {}).get("populate_by_name", False))

    def fields(self) -> list[_Field]:
        if self._fields is None:
            cls = self.cls
            strict = bool(getattr(cls, "__mmate_strict__", False))
            required_names = set(getattr(cls, "__mmate_required__", ()))
            out = []
            for name, info in cls.model_fields.items():
                alias = info.validation_alias
                if not isinstance(alias, str):
                    alias = info.alias or name
                if self.top and alias in ENVELOPE_WIRE:
                    continue
                required = info.is_required()
                out.append(_Field(name, alias, required, name in required_names or (strict and required),
                                  _Slot(info.annotation, self.nested_decoder)))
            self._fields = out
        return self._fields

    def __call__(self, data: dict[str, Any]) -> dict[str, Any]:
        out = data
        by_name = self._by_name
        for f in self.fields():
            key = f.alias
            if key not in data:
                key = f.name if by_name and f.name in data else ""
            if not key:
                if f.strict:
                    raise _types.ConvError(f"required payload key {f.alias!r} is missing (the class asks "
                                           "for it: __mmate_strict__ or __mmate_required__)").at(f".{f.name}")
                if f.required:
                    out = out if out is not data else dict(data)
                    out[f.alias] = self._zero(f)
                continue
            v = data[key]
            slot = f.slot
            if v is None:
                if slot.admits_none:
                    continue
                out = out if out is not data else dict(data)
                if f.required:
                    out[key] = self._zero(f)
                else:
                    del out[key]  # the default applies
            elif slot.sub is not None:
                fixed = slot.sub(v)
                if fixed is not v:
                    out = out if out is not data else dict(data)
                    out[key] = fixed
        return out

    def _zero(self, f: _Field) -> Any:
        try:
            return f.slot.zero()
        except _types.ConvError as e:
            raise e.at(f".{f.name}") from None


__all__ = ["model_nulls"]
