"""Per-message-type lookup tables shared by the interceptors (validators, timeouts, ...).

Keys are message classes or wire type names. A wire name matches exactly; a class matches its
instances (so a base class such as ``Event`` covers every event), first registered first.
"""
from __future__ import annotations

import contextlib
from collections.abc import Mapping
from typing import Any, Generic, TypeVar

from mmate_fast.contracts import message_type
from mmate_fast.errors import ConfigurationError

V = TypeVar("V")

_MISSING: Any = object()


class TypeMap(Generic[V]):
    """A read-only mapping from message type (class or wire name) to a value."""

    __slots__ = ("_by_class", "_by_name")

    def __init__(self, entries: Mapping[Any, V] | None = None) -> None:
        self._by_name: dict[str, V] = {}
        self._by_class: list[tuple[type, V]] = []
        for key, value in (entries or {}).items():
            if isinstance(key, str):
                self._by_name[key] = value
            elif isinstance(key, type):
                self._by_class.append((key, value))
                with contextlib.suppress(Exception):  # not a contract class: isinstance only
                    self._by_name.setdefault(message_type(key), value)
            else:
                raise ConfigurationError(f"type map keys are message classes or wire type names, "
                                         f"not {type(key).__name__}")

    def __bool__(self) -> bool:
        return bool(self._by_name or self._by_class)

    def get(self, message: Any, wire_type: str | None = None, default: Any = None) -> Any:
        """The value for ``message`` (by wire type name first, then by class), else ``default``."""
        if wire_type is None:
            wire_type = type_name(message)
        value = self._by_name.get(wire_type, _MISSING)
        if value is not _MISSING:
            return value
        for cls, v in self._by_class:
            if isinstance(message, cls):
                return v
        return default


def type_name(message: Any) -> str:
    """Wire type name of ``message`` (its class name when it is not a contract class)."""
    try:
        return message_type(message)
    except Exception:  # any object may be published with explicit routing
        return type(message).__name__
