"""AMQP properties as every transport encodes them: the compiled encoder, with a named error for a
value the broker would refuse.

Both transports (the AMQP client and the in-memory broker) encode properties here, so a bad property
raises the same :class:`~mmate_fast.errors.InvalidArgumentError` (``.argument`` names it) on RabbitMQ
and on memory://, before anything is sent, and the channel stays open. The common case costs one
encoder call and two comparisons: what the encoder refuses is diagnosed only after it did.
"""
from __future__ import annotations

from typing import Any

from mmate_fast import _checks
from mmate_fast._ext import load
from mmate_fast.errors import InvalidArgumentError

_frames = load("frames")
_encode_properties = _frames.encode_properties
_BasicProperties = _frames.BasicProperties

#: what the compiled encoders raise for a value they cannot put on the wire
ENCODE_ERRORS = (ValueError, TypeError, OverflowError)
_STRING_PROPERTIES = ("content_type", "content_encoding", "correlation_id", "reply_to", "expiration",
                      "message_id", "type", "user_id", "app_id", "cluster_id")


def properties_error(properties: Any, exc: BaseException) -> InvalidArgumentError:
    """The named error for properties the encoder refused with ``exc``."""
    if not isinstance(properties, _BasicProperties):
        return InvalidArgumentError(
            f"properties must be BasicProperties or pre-encoded bytes, not {type(properties).__name__}",
            "properties")
    try:
        for name in _STRING_PROPERTIES:
            value = getattr(properties, name)
            if value is not None:
                _checks.short_str(value, name)
        if properties.priority is not None:
            _checks.priority(properties.priority)
        if properties.delivery_mode is not None:
            _checks.delivery_mode(properties.delivery_mode)
        if properties.timestamp is not None:
            _checks.timestamp(properties.timestamp)
    except InvalidArgumentError as named:
        return named
    return InvalidArgumentError(f"headers cannot be sent as an AMQP field table: {exc}", "headers")


def encode_properties(properties: Any) -> bytes:
    """The wire form of ``properties`` (BasicProperties); InvalidArgumentError for a value the
    broker would refuse (the encoder's limits, an ``expiration`` that is not a non-negative integer
    string, a ``delivery_mode`` other than 1 or 2)."""
    try:
        data: bytes = _encode_properties(properties)
    except ENCODE_ERRORS as exc:
        raise properties_error(properties, exc) from None
    exp = properties.expiration  # a str of at most 255 bytes once encoded
    if exp is not None and not (exp.isdigit() and exp.isascii()):
        _checks.expiration(exp)
    mode = properties.delivery_mode
    if mode is not None and mode != 1 and mode != 2:
        _checks.delivery_mode(mode)
    return data


__all__ = ["ENCODE_ERRORS", "encode_properties", "properties_error"]
