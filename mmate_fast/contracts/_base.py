"""Base message dataclasses with the base field sets of mmate-go (wire-protocol.md §3.4).

Base fields are keyword-only so that subclasses can declare positional fields without defaults::

    @dataclass
    class OrderCreated(Event):
        order_id: str
        amount: float = 0.0

Every subclass registers itself in ``default_registry`` under ``message_type(cls)``.
"""
from __future__ import annotations

import datetime
from dataclasses import KW_ONLY, dataclass, field
from typing import Any, ClassVar

from mmate_fast._ext import load
from mmate_fast.contracts._fields import FALLBACK, OMITEMPTY, WIRE, wire_field
from mmate_fast.contracts._kinds import MessageKind
from mmate_fast.contracts._registry import default_registry

_env = load("envelope")


@dataclass
class Message:
    """Any Mmate message. ``id``, ``timestamp`` and ``correlation_id`` travel in the envelope,
    not in the payload. ``timestamp=None`` means "now" at publish; decoded messages carry an aware
    datetime."""

    __mmate_kind__: ClassVar[MessageKind] = MessageKind.MESSAGE

    _: KW_ONLY
    id: str = field(default_factory=_env.new_id)
    timestamp: datetime.datetime | None = None
    correlation_id: str | None = None

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        default_registry.register(cls)


@dataclass
class Command(Message):
    """A command for one service: payload ``targetService`` (always), ``replyTo`` (omitempty)."""

    __mmate_kind__: ClassVar[MessageKind] = MessageKind.COMMAND

    _: KW_ONLY
    target_service: str = ""
    reply_to: str = wire_field(omitempty=True, default="")


@dataclass
class Event(Message):
    """An event: payload ``aggregateId``, ``sequence`` (always), ``source`` (omitempty)."""

    __mmate_kind__: ClassVar[MessageKind] = MessageKind.EVENT

    _: KW_ONLY
    aggregate_id: str = ""
    sequence: int = 0
    source: str = wire_field(omitempty=True, default="")


@dataclass
class Query(Message):
    """A query: payload ``replyTo`` (always, even ``""``)."""

    __mmate_kind__: ClassVar[MessageKind] = MessageKind.QUERY

    _: KW_ONLY
    reply_to: str = ""


@dataclass
class Reply(Message):
    """A reply: payload ``success`` (always)."""

    __mmate_kind__: ClassVar[MessageKind] = MessageKind.REPLY

    _: KW_ONLY
    success: bool = True


@dataclass
class ErrorReply(Reply):
    """Go's ``contracts.ErrorReply``: ``errorCode``, ``errorMessage``, ``stackTrace`` (omitempty)
    and ``error`` (a copy of ``errorMessage`` when left empty); ``success`` defaults to False."""

    _: KW_ONLY
    success: bool = False
    error_code: str = ""
    error_message: str = ""
    stack_trace: str = wire_field(omitempty=True, default="")
    error: str = field(default="", metadata={WIRE: "error", OMITEMPTY: False, FALLBACK: "error_message"})


@dataclass
class GenericMessage:
    """A received message whose ``type`` is not registered: the payload is kept as decoded JSON.
    Publishing one sends ``payload`` as it is under ``type``."""

    __mmate_generic__: ClassVar[bool] = True

    type: str
    id: str = ""
    timestamp: datetime.datetime | None = None
    correlation_id: str | None = None
    payload: dict[str, Any] = field(default_factory=dict)
    headers: dict[str, Any] = field(default_factory=dict)
    reply_to: str | None = None


__all__ = ["Command", "ErrorReply", "Event", "GenericMessage", "Message", "Query", "Reply"]
