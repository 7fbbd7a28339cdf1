"""Builders for the channel errors the in-memory broker raises, with RabbitMQ's reply texts."""
from __future__ import annotations

from mmate_fast.errors import ChannelClosedError, channel_error_for

# (class_id, method_id) of the AMQP methods, so errors look like the ones the RabbitMQ client raises
METHOD_IDS: dict[str, tuple[int, int]] = {
    "exchange.declare": (40, 10), "exchange.delete": (40, 20), "exchange.bind": (40, 30),
    "exchange.unbind": (40, 40), "queue.declare": (50, 10), "queue.bind": (50, 20),
    "queue.purge": (50, 30), "queue.delete": (50, 40), "queue.unbind": (50, 50),
    "basic.qos": (60, 10), "basic.consume": (60, 20), "basic.cancel": (60, 30),
    "basic.publish": (60, 40), "basic.get": (60, 70), "basic.ack": (60, 80),
    "basic.reject": (60, 90), "basic.nack": (60, 120), "confirm.select": (85, 10),
}

_NAMES = {403: "ACCESS_REFUSED", 404: "NOT_FOUND", 405: "RESOURCE_LOCKED", 406: "PRECONDITION_FAILED",
          503: "COMMAND_INVALID", 530: "NOT_ALLOWED"}


def broker_error(code: int, detail: str, method: str = "") -> ChannelClosedError:
    """The named error for a channel.close with ``code`` and RabbitMQ-style text ``NAME - detail``."""
    class_id, method_id = METHOD_IDS.get(method, (0, 0))
    return channel_error_for(code, f"{_NAMES.get(code, 'ERROR')} - {detail}", class_id, method_id, method)


def not_found(kind: str, name: str, method: str = "") -> ChannelClosedError:
    """404 for a missing exchange or queue."""
    return broker_error(404, f"no {kind} '{name}' in vhost '/'", method)


def locked(name: str, method: str = "") -> ChannelClosedError:
    """405 for an exclusive queue of another connection."""
    return broker_error(405, f"cannot obtain exclusive access to locked queue '{name}' in vhost '/'. "
                             "It could be originally declared on another connection or the exclusive "
                             "property value does not match that of the original declaration.", method)


def default_exchange_refused(method: str = "") -> ChannelClosedError:
    """403 for any operation on the default exchange."""
    return broker_error(403, "operation not permitted on the default exchange", method)


def copy_error(err: ChannelClosedError) -> ChannelClosedError:
    """A fresh instance of ``err`` (so repeated raises do not pile up tracebacks)."""
    new = type(err)(str(err), err.reply_code, err.reply_text, err.class_id, err.method_id)
    return new


__all__ = ["METHOD_IDS", "broker_error", "copy_error", "default_exchange_refused", "locked", "not_found"]
