"""RabbitMQ Streams transport: the stream protocol (port 5552) for Mmate messages.

Our own client of the stream protocol (Apache-2.0, like the rest): connection, publishers with
pipelined confirms (batches in Publish frames, compiled encoding), subscriptions with credit,
server-side offsets. Messages are stored as RabbitMQ itself stores an AMQP 0-9-1 publish into a
stream, so AMQP consumers of the stream (``x-stream-offset``) read the same envelope and headers.
The Mmate level (typed publish, handlers, consumer groups) is mmate_fast.messaging.streams.
"""

from __future__ import annotations

from mmate_fast.transports.streams.connection import (
    DEFAULT_PORT,
    OffsetSpec,
    StreamConnection,
    connect_stream,
    offset_spec,
    stream_url,
)
from mmate_fast.transports.streams.producer import StreamProducer
from mmate_fast.transports.streams.subscription import StreamSubscription

__all__ = [
    "DEFAULT_PORT",
    "OffsetSpec",
    "StreamConnection",
    "StreamProducer",
    "StreamSubscription",
    "connect_stream",
    "offset_spec",
    "stream_url",
]
