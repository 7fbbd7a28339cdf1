"""Field declaration helpers: wire names (Go JSON tags) and ``omitempty``."""
from __future__ import annotations

import dataclasses
from typing import Any

MISSING: Any = dataclasses.MISSING

#: dataclass field metadata keys
WIRE = "wire"
OMITEMPTY = "omitempty"
#: the payload key must be present (null is still Go's zero value); see ``wire_field(required=True)``
REQUIRED = "mmate_required"
#: payload keys Go deletes at the top level; fields with these wire names travel in the envelope
ENVELOPE_WIRE = ("id", "type", "timestamp", "correlationId")
#: private: encode ``attr or <other attr>`` (ErrorReply.error copies errorMessage when empty)
FALLBACK = "mmate_fallback"


def wire_field(wire: str | None = None, *, omitempty: bool = False, required: bool = False,
               default: Any = MISSING, default_factory: Any = MISSING) -> Any:
    """A dataclass field with an explicit wire (payload key) name, Go's ``omitempty``, or strictness.

    ``wire=None`` keeps the automatic camelCase name; ``omitempty=True`` drops the key when the
    value is empty (``""``, 0, False, None, [], {}), as Go's ``json:",omitempty"``.
    ``required=True``: a payload without this key is refused (ContractError) instead of decoding
    to the field's default or zero value, as Go would; ``null`` is still taken as the zero value.
    """
    return dataclasses.field(default=default, default_factory=default_factory,
                             metadata={WIRE: wire, OMITEMPTY: omitempty, REQUIRED: required})


def camel_name(attr: str) -> str:
    """snake_case attribute -> camelCase wire name (``order_id`` -> ``orderId``, ``from_`` ->
    ``from``); names without underscores are kept as they are."""
    name = attr.rstrip("_")
    if "_" not in name:
        return name
    head, *rest = name.split("_")
    return head + "".join(p[:1].upper() + p[1:] for p in rest if p)


__all__ = ["MISSING", "camel_name", "wire_field"]
