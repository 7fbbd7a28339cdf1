"""RabbitMQ Streams wire for Mmate messages (compiled: src_cy/streamwire.pyx; twin:
mmate_fast/_py/streamwire.py). Load with ``mmate_fast._ext.load("streamwire")``.

A stream stores AMQP 1.0 messages. ``encode_message`` gives, for what our AMQP 0-9-1 path publishes
(pre-encoded basic properties + envelope body, to an exchange with a routing key), the AMQP 1.0 message
RabbitMQ 3.10+ stores when that publish lands in a stream: message annotations (``x-routing-key``,
``x-exchange``, ``x-basic-priority``/``-delivery-mode``/``-expiration``), properties (message-id,
user-id, reply-to, correlation-id, content-type, content-encoding, creation-time in ms), application
properties (``x-basic-type``, ``x-basic-app-id``, then the headers with RabbitMQ's type mapping; void,
decimal, nested tables and arrays dropped as it drops them) and one data section (the body).
"""
from __future__ import annotations

CHUNK_HEADER_SIZE: int

def encode_message(properties: bytes, body: bytes, exchange: str, routing_key: str) -> bytes:
    """The AMQP 1.0 message; ValueError for properties that do not decode."""

def append_message(buf: bytearray, publishing_id: int, properties: bytes, body: bytes, exchange: str,
                   routing_key: str) -> None:
    """Append a Publish frame's PublishedMessage: uint64 publishing id, uint32 size,
    ``encode_message(...)``. Nothing is appended on ValueError."""

def split_chunk(data: bytes, pos: int, end: int, min_offset: int) -> tuple[int, int, list[bytes]]:
    """Records of the osiris chunk in ``data[pos:end]`` (a Deliver frame after its subscription id):
    (offset of the first record returned, chunk timestamp ms, records), records below ``min_offset``
    left out; with no records, the offset after the chunk. Non-user chunks give no records.
    StreamProtocolError for a chunk that does not parse or holds a compressed sub-batch."""

def message_body(msg: bytes) -> bytes:
    """The data sections of an AMQP 1.0 message joined (an amqp-value that is binary or a string
    counts too); ValueError for bytes that are not AMQP 1.0 sections."""
