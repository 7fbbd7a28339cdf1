"""The pamqp method objects aio-pika returns from its calls (``Basic.Ack`` from a confirmed publish,
``Queue.DeclareOk`` from a declare, ...), built cheaply where they are per message."""
from __future__ import annotations

from typing import Any

from pamqp import commands as spec

_Ack = spec.Basic.Ack
_new = object.__new__


def basic_ack(delivery_tag: int) -> Any:
    """``Basic.Ack(delivery_tag=N)`` without pamqp's constructor checks (the confirmed-publish result)."""
    ack = _new(_Ack)
    ack.delivery_tag = delivery_tag
    ack.multiple = False
    return ack


__all__ = ("basic_ack", "spec")
