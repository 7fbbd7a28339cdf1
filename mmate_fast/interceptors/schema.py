"""JSON Schema validation of payloads on publish and on consume.

``SchemaValidationInterceptor()`` checks every payload of a contract class (dataclass or pydantic
message) against ``json_schema(cls)`` with a compiled ``jsonschema`` validator cached per class:

- on publish the **encoded** payload (what really goes on the wire) is checked after encoding, so
  an invalid one raises :class:`~mmate_fast.errors.SchemaValidationError` and nothing is sent;
- on consume the received payload (decoded JSON) is checked before the handler: an invalid one is
  dead-lettered to ``dlq.{queue}`` with reason ``schema-invalid`` and the validator's message in
  ``x-mmate-error``; the consumer goes on.

Messages of unregistered types (GenericMessage) and plain dicts have no schema and pass. Needs the
``schema`` extra (``jsonschema``; ``rfc3339-validator`` for date-time checks).
"""
from __future__ import annotations

from typing import Any

import orjson

from mmate_fast.contracts import GenericMessage, message_type, schema_errors, schema_validator
from mmate_fast.contracts._schema import Draft
from mmate_fast.errors import ContractError, SchemaValidationError
from mmate_fast.messaging.pipeline import ConsumeContext, Interceptor, PublishContext


class SchemaValidationInterceptor(Interceptor):
    """Validate payloads against their contract's JSON Schema (``draft``: "2020-12" or "draft-07")."""

    def __init__(self, *, on_publish: bool = True, on_consume: bool = True, draft: Draft = "2020-12") -> None:
        self.on_publish = on_publish
        self.on_consume = on_consume
        self.draft = draft
        #: class -> has a schema (False: not a contract class, skipped without asking again)
        self._known: dict[type, bool] = {}

    def __repr__(self) -> str:
        return (f"<SchemaValidationInterceptor publish={self.on_publish} consume={self.on_consume} "
                f"{self.draft}>")

    def _schema_of(self, cls: type) -> bool:
        """Whether ``cls`` has a schema (decided once per class)."""
        known = self._known.get(cls)
        if known is None:
            known = True
            if cls is GenericMessage or cls is dict:
                known = False
            else:
                try:
                    schema_validator(cls, self.draft)
                except ContractError:
                    known = False
            self._known[cls] = known
        return known

    def check(self, cls: type, payload: Any) -> None:
        """Raise SchemaValidationError when ``payload`` does not fit ``cls``'s schema."""
        if not self._schema_of(cls):
            return
        detail = schema_errors(cls, payload, self.draft)
        if detail is not None:
            name = message_type(cls)
            raise SchemaValidationError(f"{name} payload does not fit its JSON Schema at {detail} "
                                        f"(see json_schema({name}))", type_name=name, detail=detail)

    async def before_send(self, ctx: PublishContext) -> None:
        if self.on_publish and ctx.outgoing is not None:
            cls = type(ctx.message)
            if self._known.get(cls, True):
                self.check(cls, orjson.loads(ctx.outgoing.body).get("payload"))

    async def before_consume(self, ctx: ConsumeContext) -> bool | None:
        if self.on_consume:
            self.check(type(ctx.message), ctx.envelope.payload)
        return None


__all__ = ["SchemaValidationInterceptor"]
