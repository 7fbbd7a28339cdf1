"""The AMQP client's own argument checks: method names built past pamqp's narrower rules, and the
named error for a publish or method the compiled encoder refused.

The rules themselves are :mod:`mmate_fast._checks` (names) and :mod:`mmate_fast._transport.properties`
(properties), shared with the in-memory broker. The publish hot path does not check up front: it
catches what the compiled encoder raises and asks :func:`publish_error` which argument was at fault.
"""
from __future__ import annotations

from typing import Any

from mmate_fast import _checks
from mmate_fast.errors import InvalidArgumentError

#: method fields that carry a name or key (checked here; pamqp's narrower name rules are bypassed)
_NAME_FIELDS = (*_checks.ENTITY_FIELDS, "routing_key", "consumer_tag")


def build_method(cls: Any, **fields: Any) -> Any:
    """The pamqp method ``cls(**fields)`` with its names checked here instead of by pamqp, whose
    rules (ASCII letters and a few signs, exchange names up to 127 characters) refuse names RabbitMQ
    accepts: built with empty names, then the real ones set."""
    names = {key: fields.pop(key) for key in _NAME_FIELDS if key in fields}
    _checks.method_names(**names)
    method = cls(**fields, **dict.fromkeys(names, ""))
    for key, value in names.items():
        setattr(method, key, value)
    return method


def publish_error(exc: BaseException, exchange: Any, routing_key: Any, body: Any) -> InvalidArgumentError:
    """The named error for a publish the frame encoder refused with ``exc``."""
    try:
        _checks.publish_names(exchange, routing_key)
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


__all__ = ["build_method", "publish_error", "rpc_error"]
