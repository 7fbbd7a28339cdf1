"""Field declaration helpers: wire names (Go JSON tags) and ``omitempty``."""
from __future__ import annotations

import dataclasses
from typing import Any

MISSING: Any = dataclasses.MISSING

#: dataclass field metadata keys
WIRE = "wire"
OMITEMPTY = "omitempty"
#: private: encode ``attr or <other attr>`` (ErrorReply.error copies errorMessage when empty)
FALLBACK = "mmate_fallback"


def wire_field(wire: str | None = None, *, omitempty: bool = False, default: Any = MISSING,
               default_factory: Any = MISSING) -> Any:
    """A dataclass field with an explicit wire (payload key) name and/or Go's ``omitempty``.

    ``wire=None`` keeps the automatic camelCase name; ``omitempty=True`` drops the key when the
    value is empty (``""``, 0, False, None, [], {}), as Go's ``json:",omitempty"``.
    """
    return dataclasses.field(default=default, default_factory=default_factory,
                             metadata={WIRE: wire, OMITEMPTY: omitempty})


def camel_name(attr: str) -> str:
    """snake_case attribute -> camelCase wire name (``order_id`` -> ``orderId``, ``from_`` ->
    ``from``); names without underscores are kept as they are."""
    name = attr.rstrip("_")
    if "_" not in name:
        return name
    head, *rest = name.split("_")
    return head + "".join(p[:1].upper() + p[1:] for p in rest if p)


__all__ = ["MISSING", "camel_name", "wire_field"]
