"""Dispatch table: message type -> handlers (compiled: src_cy/dispatch.pyx; twin:
mmate_fast/_py/dispatch.py). Lookups allocate nothing: each type's handlers are kept as a tuple,
rebuilt only when registrations change."""
from __future__ import annotations

from typing import Any

class DispatchTable:
    """Handlers per wire type string, plus wildcard handlers.

    Patterns: an exact type (``"OrderCreatedEvent"``), ``"*"`` (every type), or a prefix/suffix
    glob with one ``*`` (``"Order*"``, ``"*Event"``). ``lookup`` returns exact handlers first, then
    matching globs in registration order, then ``"*"`` handlers; the result for a type is cached
    until the table changes.
    """

    def __init__(self) -> None: ...
    def add(self, pattern: str, handler: Any) -> None:
        """Register ``handler`` (any object) for ``pattern``; the same handler twice is kept once."""
    def remove(self, pattern: str, handler: Any) -> bool:
        """Unregister; returns False when it was not registered."""
    def lookup(self, type_name: str) -> tuple[Any, ...]:
        """Handlers for a type, () when none. O(1) after the first lookup of that type."""
    def patterns(self) -> list[str]:
        """Every registered pattern, in registration order."""
    def __len__(self) -> int:
        """Number of (pattern, handler) registrations."""
    def clear(self) -> None: ...
