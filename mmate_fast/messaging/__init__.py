"""Mmate messaging core: topology and routing, the wire mapping of typed messages, publisher,
dispatcher and subscriber. Knows the transports' Channel interface, nothing of RabbitMQ itself."""
from __future__ import annotations

from mmate_fast.messaging.dispatcher import Dispatcher, MessageContext
from mmate_fast.messaging.publisher import Publisher, default_route
from mmate_fast.messaging.subscriber import Subscriber, Subscription, SubscriptionStats

__all__ = [
    "Dispatcher",
    "MessageContext",
    "Publisher",
    "Subscriber",
    "Subscription",
    "SubscriptionStats",
    "default_route",
]
