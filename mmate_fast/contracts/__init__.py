"""Message contracts: base message classes (mmate-go base field sets), type names and kinds, the
type registry, and the payload codec (object <-> JSON-ready dict with Go wire names).

Wire rules: shared/spec/wire-protocol.md §3.3-§3.5 and §6.4. The hot path is ``to_payload`` /
``from_envelope``; both use per-class generated code cached in a ``ContractPlan``
(``contract_plan(cls)`` gives it: ``.type_name``, ``.kind``, ``.encode``, ``.decode``).
"""
from __future__ import annotations

from typing import TYPE_CHECKING

from mmate_fast.contracts._base import (
    Command,
    ErrorReply,
    Event,
    GenericMessage,
    Message,
    Query,
    Reply,
)
from mmate_fast.contracts._convert import from_envelope, payload_json, to_payload
from mmate_fast.contracts._fields import MISSING, wire_field
from mmate_fast.contracts._kinds import MessageKind
from mmate_fast.contracts._plan import ContractPlan
from mmate_fast.contracts._plan import plan_for as contract_plan
from mmate_fast.contracts._registry import (
    TypeRegistry,
    default_registry,
    kind_of,
    message_type,
    register,
    reply_type_of,
)
from mmate_fast.contracts._schema import clear_schema_cache, json_schema, schema_errors, schema_validator

__all__ = [
    "MISSING",
    "Command",
    "ContractPlan",
    "ErrorReply",
    "Event",
    "GenericMessage",
    "Message",
    "MessageKind",
    "Query",
    "Reply",
    "TypeRegistry",
    "clear_schema_cache",
    "contract_plan",
    "default_registry",
    "from_envelope",
    "json_schema",
    "kind_of",
    "message_type",
    "payload_json",
    "register",
    "reply_type_of",
    "schema_errors",
    "schema_validator",
    "to_payload",
    "wire_field",
]

if TYPE_CHECKING:  # pragma: no cover - for type checkers only; imported lazily at run time
    from mmate_fast.contracts._pydantic import (  # noqa: F401 - re-exported lazily below
        PydanticCommand,
        PydanticEvent,
        PydanticMessage,
        PydanticQuery,
        PydanticReply,
    )

_PYDANTIC_NAMES = frozenset({"PydanticCommand", "PydanticEvent", "PydanticMessage", "PydanticQuery",
                             "PydanticReply"})


def __getattr__(name: str) -> object:
    """The pydantic base models, imported on first access (pydantic is optional)."""
    if name in _PYDANTIC_NAMES:
        from mmate_fast.contracts import _pydantic
        return getattr(_pydantic, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
