"""Arguments the broker would refuse (by closing the channel), refused before anything is written.

Both transports (this AMQP client and the in-memory broker) use these checks, so a bad name or
property raises the same :class:`~mmate_fast.errors.InvalidArgumentError` (``.argument`` names it)
on RabbitMQ and on memory://, and the channel stays open. The publish hot path does not check up
front: it catches what the compiled encoder raises and asks :func:`publish_error` /
:func:`properties_error` which argument was at fault.
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
#: method fields that name an exchange or a queue (the other names are plain short strings)
_ENTITY_FIELDS = frozenset({"exchange", "queue", "destination", "source"})
#: method fields that carry a name or key (checked here; pamqp's narrower name rules are bypassed)
_NAME_FIELDS = (*_ENTITY_FIELDS, "routing_key", "consumer_tag")
_STRING_PROPERTIES = ("content_type", "content_encoding", "correlation_id", "reply_to", "expiration",
                      "message_id", "type", "user_id", "app_id", "cluster_id")


def check_name(value: Any, argument: str) -> None:
    """A short string (routing key, consumer tag, string property): a str of at most 255 bytes in
    UTF-8."""
    _checks.short_str(value, argument)


def check_entity(value: Any, argument: str) -> None:
    """An exchange or queue name: a short string without CR/LF (RabbitMQ accepts any other
    character; its ``amq.`` prefix rule is left to the broker, since passive declares and binds to
    ``amq.*`` exchanges are fine)."""
    _checks.name(value, argument, argument.replace("_", " "), declare=False)


def check_fields(**fields: Any) -> None:
    """Check the names a method carries (``queue=...``, ``routing_key=...``, ``consumer_tag=...``)."""
    for argument, value in fields.items():
        if argument in _ENTITY_FIELDS:
            check_entity(value, argument)
        else:
            check_name(value, argument)


def build_method(cls: Any, **fields: Any) -> Any:
    """The pamqp method ``cls(**fields)`` with its names checked here instead of by pamqp, whose
    rules (ASCII letters and a few signs, exchange names up to 127 characters) refuse names RabbitMQ
    accepts: built with empty names, then the real ones set."""
    names = {key: fields.pop(key) for key in _NAME_FIELDS if key in fields}
    check_fields(**names)
    method = cls(**fields, **dict.fromkeys(names, ""))
    for key, value in names.items():
        setattr(method, key, value)
    return method


def check_publish(exchange: Any, routing_key: Any) -> None:
    """The names of a publish (the exchange may be any short string: a missing one is the
    broker's 404, not an argument error)."""
    check_name(exchange, "exchange")
    check_name(routing_key, "routing_key")


def _check_octet(value: Any, argument: str, allowed: str = "0-255") -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidArgumentError(f"{argument} must be an int ({allowed}), not {type(value).__name__}",
                                   argument)
    if not 0 <= value <= 255:
        raise InvalidArgumentError(f"{argument} {value} is outside {allowed}", argument)


def _check_expiration(value: Any) -> None:
    if type(value) is str and value.isdigit() and value.isascii():
        return
    raise InvalidArgumentError(
        f"expiration {value!r} is not a non-negative integer string (milliseconds, e.g. \"60000\"); "
        "the broker would close the channel for it", "expiration")


def _check_delivery_mode(value: Any) -> None:
    _check_octet(value, "delivery_mode", "1 or 2")
    if value not in (1, 2):
        raise InvalidArgumentError(
            f"delivery_mode {value} is neither 1 (transient) nor 2 (persistent)", "delivery_mode")


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
                check_name(value, name)
        if properties.priority is not None:
            _check_octet(properties.priority, "priority")
        if properties.delivery_mode is not None:
            _check_octet(properties.delivery_mode, "delivery_mode", "1 or 2")
        ts = properties.timestamp
        if ts is not None and (isinstance(ts, bool) or not isinstance(ts, int) or not 0 <= ts < 1 << 64):
            return InvalidArgumentError(f"timestamp {ts!r} is not an int in 0..2**64-1 (seconds since "
                                        "the epoch)", "timestamp")
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
        _check_expiration(exp)
    mode = properties.delivery_mode
    if mode is not None and mode != 1 and mode != 2:
        _check_delivery_mode(mode)
    return data


def publish_error(exc: BaseException, exchange: Any, routing_key: Any, body: Any) -> InvalidArgumentError:
    """The named error for a publish the frame encoder refused with ``exc``."""
    try:
        check_publish(exchange, routing_key)
    except InvalidArgumentError as named:
        return named
    if not isinstance(body, (bytes, bytearray, memoryview)):
        return InvalidArgumentError(f"body must be bytes, bytearray or memoryview, not {type(body).__name__}",
                                    "body")
    return InvalidArgumentError(f"the publish could not be encoded: {exc}", "body")


def rpc_error(exc: BaseException, what: str) -> InvalidArgumentError:
    """The named error for a method the encoder refused (a field table that cannot be sent)."""
    return InvalidArgumentError(f"{what}: arguments cannot be sent as an AMQP field table: {exc}",
                                "arguments")


__all__ = ["ENCODE_ERRORS", "build_method", "check_entity", "check_fields", "check_name", "check_publish",
           "encode_properties", "properties_error", "publish_error", "rpc_error"]
