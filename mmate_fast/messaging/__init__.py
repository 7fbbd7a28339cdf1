"""Mmate messaging core: topology and routing, the wire mapping of typed messages, publisher,
dispatcher and subscriber. Knows the transports' Channel interface (mmate_fast._transport), nothing
of RabbitMQ itself, nor of the patterns above it: their policies for failed deliveries (dead-lettering,
error replies) are injected (the Client wires them)."""
from __future__ import annotations

from mmate_fast.messaging.dispatcher import Dispatcher, MessageContext
from mmate_fast.messaging.pipeline import ConsumeContext, Interceptor, Pipeline, PublishContext
from mmate_fast.messaging.publisher import Publisher, default_route
from mmate_fast.messaging.subscriber import (
    ErrorHook,
    Failure,
    FailureHandler,
    Subscriber,
    Subscription,
    SubscriptionStats,
    settles_later,
)

__all__ = [
    "ConsumeContext",
    "Dispatcher",
    "ErrorHook",
    "Failure",
    "FailureHandler",
    "Interceptor",
    "MessageContext",
    "Pipeline",
    "PublishContext",
    "Publisher",
    "Subscriber",
    "Subscription",
    "SubscriptionStats",
    "default_route",
    "settles_later",
]
