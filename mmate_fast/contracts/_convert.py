"""Message object <-> payload dict / envelope (the per-message hot path)."""
from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from mmate_fast.contracts._base import GenericMessage
from mmate_fast.contracts._diagnose import payload_error
from mmate_fast.contracts._plan import _PLANS, _parse_envelope_ts, plan_for
from mmate_fast.contracts._registry import TypeRegistry, default_registry
from mmate_fast.errors import ContractError


def to_payload(msg: Any) -> dict[str, Any]:
    """The JSON-ready payload dict of a message, with wire (camelCase) keys, the base fields of its
    kind, omitempty fields dropped when empty, nested dataclasses / pydantic models converted.
    datetime, timedelta, bytes, Decimal, UUID and Enum values are left for the envelope codec.
    Excludes ``id``/``type``/``timestamp``/``correlationId`` (they travel in the envelope).
    A GenericMessage gives its ``payload``; a plain dict is returned as it is. A payload that
    contains itself raises PayloadEncodeError naming the field."""
    p = _PLANS.get(msg.__class__)
    if p is None:
        if isinstance(msg, Mapping):
            return dict(msg)
        if isinstance(msg, type):
            raise ContractError(f"to_payload() needs a message instance, got the class {msg.__qualname__}")
        p = plan_for(msg.__class__)
    try:
        return p.encode(msg)
    except (RecursionError, ValueError) as exc:  # a cycle; pydantic's "Circular reference detected"
        raise payload_error(msg, p.type_name, exc) from None


def payload_json(msg: Any) -> bytes | None:
    """The payload's Go JSON written straight from a registered dataclass's attributes by its
    compiled plan (the same bytes as ``encode_json(to_payload(msg))``), or None: then use
    ``to_payload`` (pydantic models, generic messages, plain dicts, unregistered classes, a value the
    compiled writer leaves to the general path)."""
    p = _PLANS.get(msg.__class__)
    return None if p is None else p.payload_json(msg)


def payload_writer(cls: type) -> Any:
    """The compiled payload writer of a registered dataclass (``payload_json``'s engine; a
    MessageTemplate caches it per class), or None."""
    p = _PLANS.get(cls)
    return None if p is None else p.payload_writer()


def from_envelope(env: Any, registry: TypeRegistry = default_registry) -> Any:
    """Decode an envelope into an instance of the class registered for ``env.type`` (payload keys
    matched to fields case-insensitively like Go, values converted by annotation; a mismatch raises
    ContractError naming the field), with id / timestamp (aware datetime) / correlation id from the
    envelope. Unregistered types give a GenericMessage that keeps the payload."""
    t = env.type
    cls = registry._by_name.get(t)
    if cls is not None and getattr(env, "raw_payload", None) is not None:  # a plain object, undecoded
        return (_PLANS.get(cls) or plan_for(cls)).decode_envelope(env)
    payload = env.payload
    if cls is None:
        return GenericMessage(type=t, id=env.id, timestamp=_parse_envelope_ts(env.timestamp),
                              correlation_id=env.correlation_id or None,
                              payload=payload if payload is not None else {},
                              headers=env.headers if env.headers is not None else {},
                              reply_to=env.reply_to)
    if payload.__class__ is not dict:
        if payload is None:
            payload = {}
        elif isinstance(payload, dict):
            payload = dict(payload)
        else:
            raise ContractError(f"{t}: payload must be a JSON object, got {type(payload).__name__}")
    p = _PLANS.get(cls) or plan_for(cls)
    return p.decode(payload, env.id, t, env.timestamp, env.correlation_id)


def payload_decoder(type_name: str, registry: TypeRegistry = default_registry,
                    ) -> Callable[[dict[str, Any], str, str, str, str | None], Any] | None:
    """What ``from_envelope`` does for an envelope of ``type_name`` whose payload is a dict, as one
    callable ``(payload, id, type, timestamp, correlation id) -> message`` (same values, same
    errors) to keep for a batch of such envelopes; None for a type ``registry`` does not know
    (``from_envelope`` gives a GenericMessage)."""
    cls = registry._by_name.get(type_name)
    if cls is None:
        return None
    return (_PLANS.get(cls) or plan_for(cls)).decoder()


__all__ = ["from_envelope", "payload_decoder", "payload_json", "payload_writer", "to_payload"]
