"""Pydantic v2 base models with the Mmate base field sets (optional: needs ``pydantic>=2``).

Field names are snake_case in Python and camelCase on the wire (``alias_generator=to_camel``,
``populate_by_name=True``). Subclasses register in ``default_registry`` like dataclass messages::

    class OrderCreated(PydanticEvent):
        order_id: str
        amount: float = 0.0

Encoding uses ``model_dump(by_alias=True)``, decoding ``model_validate`` (pydantic's own coercion
rules apply, not Go's; payload keys must match an alias or field name exactly).
"""
from __future__ import annotations

import datetime
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel

from mmate_fast._ext import load
from mmate_fast.contracts._kinds import MessageKind
from mmate_fast.contracts._registry import default_registry

_env = load("envelope")


class PydanticMessage(BaseModel):
    """Base of the pydantic message models: ``id``, ``timestamp``, ``correlation_id`` travel in the
    envelope."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True)

    __mmate_kind__: ClassVar[MessageKind] = MessageKind.MESSAGE
    #: field names dropped from the payload when empty (Go ``omitempty``)
    __mmate_omitempty__: ClassVar[tuple[str, ...]] = ()

    id: str = Field(default_factory=_env.new_id)
    timestamp: datetime.datetime | None = None
    correlation_id: str | None = None

    @classmethod
    def __pydantic_init_subclass__(cls, **kwargs: Any) -> None:
        super().__pydantic_init_subclass__(**kwargs)
        if not cls.__name__.startswith("Pydantic") or cls.__module__ != __name__:
            default_registry.register(cls)


class PydanticCommand(PydanticMessage):
    """Command: payload ``targetService`` (always), ``replyTo`` (omitempty)."""

    __mmate_kind__: ClassVar[MessageKind] = MessageKind.COMMAND
    __mmate_omitempty__: ClassVar[tuple[str, ...]] = ("reply_to",)

    target_service: str = ""
    reply_to: str = ""


class PydanticEvent(PydanticMessage):
    """Event: payload ``aggregateId``, ``sequence`` (always), ``source`` (omitempty)."""

    __mmate_kind__: ClassVar[MessageKind] = MessageKind.EVENT
    __mmate_omitempty__: ClassVar[tuple[str, ...]] = ("source",)

    aggregate_id: str = ""
    sequence: int = 0
    source: str = ""


class PydanticQuery(PydanticMessage):
    """Query: payload ``replyTo`` (always)."""

    __mmate_kind__: ClassVar[MessageKind] = MessageKind.QUERY

    reply_to: str = ""


class PydanticReply(PydanticMessage):
    """Reply: payload ``success`` (always)."""

    __mmate_kind__: ClassVar[MessageKind] = MessageKind.REPLY

    success: bool = True


__all__ = ["PydanticCommand", "PydanticEvent", "PydanticMessage", "PydanticQuery", "PydanticReply"]
