"""aio-pika's public API on mmate_fast's compiled AMQP client: ``import mmate_fast.compat.aio_pika as
aio_pika`` is the only change aio-pika code needs (``from mmate_fast.compat.aio_pika.abc import ...``
for ``aio_pika.abc``, likewise ``.exceptions``, ``.patterns``, ``.pool``).

Names, signatures, defaults and semantics follow aio-pika 10 (``__version__`` is the aio-pika
version whose API this mirrors). What differs in a way a user could notice is listed in the README
("aio-pika compatibility"). aio-pika itself is not needed.
"""
from __future__ import annotations

from mmate_fast.compat.aio_pika import abc, patterns, pool
from mmate_fast.compat.aio_pika.abc import DeliveryMode, ExchangeType
from mmate_fast.compat.aio_pika.channel import Channel
from mmate_fast.compat.aio_pika.connection import Connection, connect
from mmate_fast.compat.aio_pika.exceptions import AMQPException, MessageProcessError
from mmate_fast.compat.aio_pika.exchange import Exchange
from mmate_fast.compat.aio_pika.log import logger
from mmate_fast.compat.aio_pika.message import IncomingMessage, Message
from mmate_fast.compat.aio_pika.queue import Queue
from mmate_fast.compat.aio_pika.robust_channel import RobustChannel
from mmate_fast.compat.aio_pika.robust_connection import RobustConnection, connect_robust
from mmate_fast.compat.aio_pika.robust_exchange import RobustExchange
from mmate_fast.compat.aio_pika.robust_queue import RobustQueue

#: the aio-pika release whose API this facade mirrors
__version__ = "10.2.1"

__all__ = (
    "AMQPException",
    "Channel",
    "Connection",
    "DeliveryMode",
    "Exchange",
    "ExchangeType",
    "IncomingMessage",
    "Message",
    "MessageProcessError",
    "Queue",
    "RobustChannel",
    "RobustConnection",
    "RobustExchange",
    "RobustQueue",
    "__version__",
    "abc",
    "connect",
    "connect_robust",
    "logger",
    "patterns",
    "pool",
)
