"""The stage context: how ``globalData`` becomes what a stage function gets, and how what it returns
goes back into ``globalData`` and the stage result — in Go's two modes.

* dict workflow (``context=None``): the stage gets a copy of ``globalData``; it returns a dict (its
  result ``data``, merged as ``globalData["{stageId}.{key}"]``) or None (no data).
* typed workflow (dataclass / pydantic model, Go's ``NewTypedWorkflow``): the stage gets the context
  built from ``globalData`` (wire names: camelCase, as every Mmate contract); it returns the context
  (or mutates it in place and returns None), or a dict of attribute updates; the context's JSON
  fields are written back into ``globalData`` and the result carries no ``data``.
"""
from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

from mmate_fast.contracts import contract_plan


def is_pydantic_class(tp: Any) -> bool:
    """A pydantic v2 model class (duck-typed: no pydantic import needed)."""
    return isinstance(tp, type) and hasattr(tp, "model_validate") and hasattr(tp, "model_dump")


def is_context_class(tp: Any) -> bool:
    """What ``Workflow(context=...)`` accepts: a dataclass or pydantic model class."""
    return isinstance(tp, type) and (dataclasses.is_dataclass(tp) or is_pydantic_class(tp))


class ContextCodec:
    """The context rules of one workflow (see the module docstring)."""

    __slots__ = ("cls", "typed")

    def __init__(self, context: type | None) -> None:
        self.cls = context
        self.typed = context is not None

    def to_data(self, value: Any) -> dict[str, Any]:
        """The JSON-ready dict of a start value: a mapping (copied) or a context object (its wire
        fields); None is ``{}`` (``globalData`` is never null on the wire)."""
        if value is None:
            return {}
        if isinstance(value, Mapping):
            return dict(value)
        if is_context_class(type(value)):
            return contract_plan(type(value)).encode_nested(value)
        raise TypeError("flow data must be a dict or a dataclass / pydantic object, "
                        f"got {type(value).__qualname__}")

    def build(self, global_data: dict[str, Any]) -> Any:
        """The stage argument: a dict copy, or the typed context (a mismatch raises ContractError,
        which fails the stage as a handler error would)."""
        if self.cls is None:
            return dict(global_data)
        return contract_plan(self.cls).decode_nested(global_data)

    def apply(self, stage_id: str, ctx: Any, returned: Any,
              global_data: dict[str, Any]) -> tuple[dict[str, Any] | None, dict[str, Any]]:
        """What a stage returned, as ``(data, updates)``: the result ``data`` (None when there is
        none: Go omits an empty map) and the ``globalData`` keys it sets (``global_data`` is not
        changed). Typed: the context's wire fields whose value differs from ``global_data``, so that
        parallel stages changing different fields merge."""
        if self.cls is None:
            if returned is None:
                return None, {}
            if returned.__class__ is not dict and not isinstance(returned, Mapping):
                raise TypeError(f"stage {stage_id!r} of a dict workflow must return a dict or None, "
                                f"got {type(returned).__qualname__}")
            data = dict(returned)
            return (data or None), {f"{stage_id}.{key}": value for key, value in data.items()}
        cls = self.cls
        if returned is None:
            obj = ctx
        elif isinstance(returned, cls):
            obj = returned
        elif isinstance(returned, Mapping):
            if is_pydantic_class(cls):
                obj = cls.model_validate({**ctx.model_dump(), **returned})  # type: ignore[attr-defined]
            else:
                obj = dataclasses.replace(ctx, **returned)
        else:
            raise TypeError(f"stage {stage_id!r} of a {cls.__qualname__} workflow must return the context, "
                            f"a dict of updates or None, got {type(returned).__qualname__}")
        fields = contract_plan(cls).encode_nested(obj)
        missing = object()
        return None, {k: v for k, v in fields.items() if global_data.get(k, missing) != v}

__all__ = ["ContextCodec", "is_context_class", "is_pydantic_class"]
