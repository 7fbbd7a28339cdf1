"""Checks of arguments RabbitMQ would refuse, made before anything is sent.

The broker answers a bad name, expiration or priority by closing the channel (406/403), or the
frame cannot carry it at all (a short string is at most 255 bytes of UTF-8). Each check here raises
:class:`~mmate_fast.errors.InvalidArgumentError` naming the argument and saying what is allowed.
Written once, below the transports and the messaging core, so both may use it. Every check has an
O(1) fast path for the common case (a short ASCII string, an int in range).
"""
from __future__ import annotations

import math
from typing import Any

from mmate_fast.errors import InvalidArgumentError, SchedulingError

#: AMQP short strings (names, routing keys, most properties) carry at most this many bytes
MAX_SHORT_STR = 255
#: names RabbitMQ reserves for itself: declaring one is refused with 403 ACCESS_REFUSED
RESERVED_PREFIX = "amq."
#: RabbitMQ's largest per-message expiration (ms; ten years); a larger one is refused with 406
MAX_EXPIRATION_MS = 315_360_000_000
MAX_PRIORITY = 255
_MAX_TTL_S = MAX_EXPIRATION_MS / 1000


def short_str(value: Any, argument: str, what: str = "") -> str:
    """``value`` when it fits an AMQP short string: a str of at most 255 bytes of UTF-8."""
    if value.__class__ is str and len(value) <= MAX_SHORT_STR and value.isascii():
        return value  # the common case, O(1): ASCII is one byte per character
    label = what or argument
    if not isinstance(value, str):
        raise InvalidArgumentError(f"{label} must be a str, not {type(value).__qualname__}", argument)
    try:
        size = len(value.encode())
    except UnicodeEncodeError as exc:
        raise InvalidArgumentError(
            f"{label} {value[:40]!r} cannot be encoded as UTF-8 ({exc.reason} at position {exc.start}): "
            "use valid Unicode text", argument) from None
    if size > MAX_SHORT_STR:
        raise InvalidArgumentError(
            f"{label} {value[:40]!r}... is {size} bytes of UTF-8; AMQP allows at most {MAX_SHORT_STR}",
            argument)
    return value


def name(value: Any, argument: str, what: str = "queue name", *, declare: bool = True) -> str:
    """``value`` when RabbitMQ accepts it as a queue/exchange name: a short string (see
    :func:`short_str`) without CR or LF (RabbitMQ silently strips them, so the declared name would
    differ) and, for a declaration, not starting with the reserved ``amq.``."""
    short_str(value, argument, what)
    if "\n" in value or "\r" in value:
        raise InvalidArgumentError(
            f"{what} {value[:40]!r} contains a line break: RabbitMQ strips CR/LF from names, so the "
            "queue would get another name; leave them out", argument)
    if declare and value.startswith(RESERVED_PREFIX):
        raise InvalidArgumentError(
            f"{what} {value[:40]!r} starts with {RESERVED_PREFIX!r}, which RabbitMQ reserves "
            "(403 ACCESS_REFUSED): choose another name", argument)
    return value


def entity(value: Any, argument: str) -> str:
    """An exchange or queue name a method refers to (``queue=``, ``exchange=``, ``source=``, ...): as
    :func:`name` but without the ``amq.`` rule, which is left to the broker (passive declares and
    binds to ``amq.*`` exchanges are fine)."""
    return name(value, argument, argument.replace("_", " "), declare=False)


#: method fields that name an exchange or a queue (the other names are plain short strings)
ENTITY_FIELDS = frozenset({"exchange", "queue", "destination", "source"})


def method_names(**values: Any) -> None:
    """Check the names a method carries (``queue=...``, ``routing_key=...``, ``consumer_tag=...``):
    exchange and queue names as :func:`entity`, the others as :func:`short_str`."""
    for argument, value in values.items():
        if argument in ENTITY_FIELDS:
            entity(value, argument)
        else:
            short_str(value, argument)


def publish_names(exchange: Any, routing_key: Any) -> None:
    """The names of a publish: short strings (a missing exchange is the broker's 404, not an
    argument error)."""
    short_str(exchange, "exchange")
    short_str(routing_key, "routing_key")


def expiration(value: Any) -> str:
    """``value`` when it is an AMQP ``expiration`` property RabbitMQ accepts: a string of digits (ms)."""
    if type(value) is str and value.isdigit() and value.isascii():
        return value
    raise InvalidArgumentError(
        f"expiration {value!r} is not a non-negative integer string (milliseconds, e.g. \"60000\"); "
        "the broker would close the channel for it", "expiration")


def delivery_mode(value: Any) -> int:
    """``value`` when it is an AMQP ``delivery_mode``: 1 (transient) or 2 (persistent)."""
    if value.__class__ is int and (value == 1 or value == 2):
        return int(value)
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidArgumentError(f"delivery_mode must be an int (1 or 2), not {type(value).__name__}",
                                   "delivery_mode")
    raise InvalidArgumentError(f"delivery_mode {value} is neither 1 (transient) nor 2 (persistent)",
                               "delivery_mode")


def timestamp(value: Any) -> int:
    """``value`` when it is an AMQP ``timestamp`` property: an int in 0..2**64-1 (seconds since the epoch)."""
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < 1 << 64:
        raise InvalidArgumentError(f"timestamp {value!r} is not an int in 0..2**64-1 (seconds since "
                                   "the epoch)", "timestamp")
    return int(value)


def duration(value: Any, argument: str, unit: str = "seconds", maximum: float = math.inf,
             error: type[InvalidArgumentError] | type[SchedulingError] = InvalidArgumentError,
             hint: str = "") -> float:
    """``value`` as a float when it is a finite number in 0..``maximum``, else ``error`` (its
    message ends with ``hint``)."""
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value) \
            or not 0 <= value <= maximum:
        bound = f"in 0..{maximum:.15g}" if maximum != math.inf else ">= 0"
        message = f"{argument} must be a finite number of {unit} {bound}, got {value!r}{hint}"
        if error is SchedulingError:
            raise SchedulingError(message)
        raise InvalidArgumentError(message, argument)
    return float(value)


def ttl_ms(ttl: Any) -> int | None:
    """The AMQP ``expiration`` (whole ms) for ``ttl`` seconds: None for 0 (no TTL, as Go); a
    positive TTL below 1 ms becomes 1 ms (never "no TTL"). A negative TTL (RabbitMQ: 406 and the
    channel closed) or one beyond RabbitMQ's ten years raises InvalidArgumentError."""
    if (ttl.__class__ is int or ttl.__class__ is float) and 0.001 <= ttl <= _MAX_TTL_S:
        return int(ttl * 1000)  # the common case, no call (NaN fails the comparison)
    seconds = duration(ttl, "ttl", "seconds", _MAX_TTL_S,
                       hint=" (RabbitMQ refuses a negative expiration, closing the channel, and one beyond "
                            "ten years); use ttl=None for no expiry")
    ms = int(seconds * 1000)
    if ms == 0:
        return 1 if seconds > 0 else None
    return ms


def priority(value: Any) -> int:
    """``value`` when it is a valid AMQP priority: an int in 0..255."""
    if value.__class__ is int and 0 <= value <= MAX_PRIORITY:
        return int(value)
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidArgumentError(f"priority must be an int in 0..{MAX_PRIORITY}, not "
                                   f"{type(value).__qualname__}", "priority")
    raise InvalidArgumentError(
        f"priority {value} is outside 0..{MAX_PRIORITY} (the AMQP priority is one octet; RabbitMQ "
        "priority queues use 1..x-max-priority)", "priority")


def delay_ms(delay: Any, unit: str = "seconds") -> int:
    """Whole ms of a ``delay`` (in seconds, or ms with ``unit="ms"``); a negative, infinite or
    non-number delay raises :class:`~mmate_fast.errors.SchedulingError`."""
    value = duration(delay, "delay", unit, error=SchedulingError)
    return int(value if unit == "ms" else value * 1000)


__all__ = ["ENTITY_FIELDS", "MAX_EXPIRATION_MS", "MAX_PRIORITY", "MAX_SHORT_STR", "RESERVED_PREFIX",
           "delay_ms", "delivery_mode", "duration", "entity", "expiration", "method_names", "name",
           "priority", "publish_names", "short_str", "timestamp", "ttl_ms"]
