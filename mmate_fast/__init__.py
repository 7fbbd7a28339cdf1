"""mmate_fast: the fastest way to run Mmate messaging (RabbitMQ) from Python, wire-compatible with
mmate-go.

Layers (bottom-up): compiled frame codec and confirm tracker (``mmate_fast._cy``, pure-Python twins
in ``mmate_fast._py``), the AMQP 0-9-1 client (``mmate_fast.amqp``), transports behind one interface
(``mmate_fast.transports``: RabbitMQ and the embedded in-memory broker).
"""
from __future__ import annotations

from mmate_fast import errors
from mmate_fast._ext import COMPILED, NO_EXTENSIONS
from mmate_fast.amqp import BasicProperties, ChannelPool, Delivery, Typed
from mmate_fast.errors import (
    AMQPConnectionError,
    AuthenticationError,
    BrokerUnreachableError,
    ChannelClosedError,
    ChannelError,
    ConnectionClosedError,
    FrameError,
    HandshakeTimeout,
    MmateError,
    NotFoundError,
    OperationTimeout,
    PreconditionFailedError,
    PublishNackedError,
    PublishReturnedError,
)
from mmate_fast.transports import Channel, Connection, QueueDeclareOk, connect

__version__ = "0.1.0"

__all__ = [
    "COMPILED",
    "NO_EXTENSIONS",
    "AMQPConnectionError",
    "AuthenticationError",
    "BasicProperties",
    "BrokerUnreachableError",
    "Channel",
    "ChannelClosedError",
    "ChannelError",
    "ChannelPool",
    "Connection",
    "ConnectionClosedError",
    "Delivery",
    "FrameError",
    "HandshakeTimeout",
    "MmateError",
    "NotFoundError",
    "OperationTimeout",
    "PreconditionFailedError",
    "PublishNackedError",
    "PublishReturnedError",
    "QueueDeclareOk",
    "Typed",
    "__version__",
    "connect",
    "errors",
]
