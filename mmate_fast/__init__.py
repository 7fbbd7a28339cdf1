"""mmate_fast: the fastest way to run Mmate messaging (RabbitMQ) from Python, wire-compatible with
mmate-go.

Layers (bottom-up, as ARCHITECTURE.md; imports point down, tests/unit/test_layers.py checks it):
errors and the version, compiled frame/envelope codecs, dispatch table and confirm tracker
(``mmate_fast._cy``, pure-Python twins in ``mmate_fast._py``), the transport interface
(``mmate_fast._transport``), the AMQP 0-9-1 client (``mmate_fast.amqp``), the transports
(``mmate_fast.transports``: RabbitMQ and the embedded in-memory broker), contracts
(``mmate_fast.contracts``), the messaging core (``mmate_fast.messaging``), the patterns (bridge,
interceptors, reliability, StageFlow, discovery, observability) and the front door (``Client``, the
``mmate`` command line, the pytest plugin). This module re-exports the front door for users (with the
trust interceptors, ``SigningInterceptor`` and ``EncryptionInterceptor``, the StageFlow workflow API,
contract discovery and schemas, the observability server, and the worker fleet's ``run_fleet``); the
library never imports it.
"""
from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from mmate_fast import errors
from mmate_fast._ext import COMPILED, NO_EXTENSIONS
from mmate_fast._version import __version__
from mmate_fast.amqp import BasicProperties, ChannelPool, Delivery, Typed
from mmate_fast.amqp.robust import RecoveryPolicy, RobustConnection, connect_robust
from mmate_fast.bridge import Bridge
from mmate_fast.client import Client
from mmate_fast.contracts import (
    Command,
    ErrorReply,
    Event,
    GenericMessage,
    Message,
    MessageKind,
    Query,
    Reply,
    TypeRegistry,
    default_registry,
    json_schema,
    register,
    wire_field,
)
from mmate_fast.discovery import Discovery, DiscoveryOptions, EndpointContract, asyncapi
from mmate_fast.errors import (
    AMQPConnectionError,
    AuthenticationError,
    BrokerUnreachableError,
    ChannelClosedError,
    ChannelError,
    ClientClosedError,
    ConnectionBlockedError,
    ConnectionClosedError,
    ContractError,
    EnvelopeError,
    FlowError,
    FrameError,
    HandlerRegistrationError,
    HandshakeTimeout,
    InvalidArgumentError,
    MmateError,
    NotFoundError,
    OperationTimeout,
    PayloadEncodeError,
    PreconditionFailedError,
    PublishNackedError,
    PublishReturnedError,
    RemoteError,
    RequestTimeout,
    SchemaValidationError,
)
from mmate_fast.interceptors import EncryptionInterceptor, SchemaValidationInterceptor, SigningInterceptor
from mmate_fast.messaging import (
    ConsumeContext,
    Interceptor,
    MessageContext,
    PublishContext,
    Publisher,
    Subscriber,
    Subscription,
    settles_later,
)
from mmate_fast.observability import Observability, TracingObserver
from mmate_fast.stageflow import FlowEngine, FlowStatus, Stage, StageInfo, StageRetry, Workflow
from mmate_fast.transports import Channel, Connection, QueueDeclareOk, connect

if TYPE_CHECKING:
    from mmate_fast.fleet import FleetOptions, run_fleet

# Imported on first use: most programs never run a fleet (its supervisor is ~10 % of this import).
_LAZY = {"FleetOptions": "mmate_fast.fleet", "run_fleet": "mmate_fast.fleet"}


def __getattr__(name: str) -> Any:
    """Resolve the lazily imported public names (``_LAZY``) and cache them in the module."""
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'mmate_fast' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


__all__ = [
    "COMPILED",
    "NO_EXTENSIONS",
    "AMQPConnectionError",
    "AuthenticationError",
    "BasicProperties",
    "Bridge",
    "BrokerUnreachableError",
    "Channel",
    "ChannelClosedError",
    "ChannelError",
    "ChannelPool",
    "Client",
    "ClientClosedError",
    "Command",
    "Connection",
    "ConnectionBlockedError",
    "ConnectionClosedError",
    "ConsumeContext",
    "ContractError",
    "Delivery",
    "Discovery",
    "DiscoveryOptions",
    "EncryptionInterceptor",
    "EndpointContract",
    "EnvelopeError",
    "ErrorReply",
    "Event",
    "FleetOptions",
    "FlowEngine",
    "FlowError",
    "FlowStatus",
    "FrameError",
    "GenericMessage",
    "HandlerRegistrationError",
    "HandshakeTimeout",
    "Interceptor",
    "InvalidArgumentError",
    "Message",
    "MessageContext",
    "MessageKind",
    "MmateError",
    "NotFoundError",
    "Observability",
    "OperationTimeout",
    "PayloadEncodeError",
    "PreconditionFailedError",
    "PublishContext",
    "PublishNackedError",
    "PublishReturnedError",
    "Publisher",
    "Query",
    "QueueDeclareOk",
    "RecoveryPolicy",
    "RemoteError",
    "Reply",
    "RequestTimeout",
    "RobustConnection",
    "SchemaValidationError",
    "SchemaValidationInterceptor",
    "SigningInterceptor",
    "Stage",
    "StageInfo",
    "StageRetry",
    "Subscriber",
    "Subscription",
    "TracingObserver",
    "TypeRegistry",
    "Typed",
    "Workflow",
    "__version__",
    "asyncapi",
    "connect",
    "connect_robust",
    "default_registry",
    "errors",
    "json_schema",
    "register",
    "run_fleet",
    "settles_later",
    "wire_field",
]
