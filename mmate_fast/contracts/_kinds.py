"""The message kinds of Mmate (wire header ``x-message-kind``; routing prefix per kind)."""
from __future__ import annotations

import enum


class MessageKind(enum.StrEnum):
    """What a message is; decides the exchange, routing key and base payload fields."""

    COMMAND = "command"
    EVENT = "event"
    QUERY = "query"
    REPLY = "reply"
    MESSAGE = "message"


__all__ = ["MessageKind"]
