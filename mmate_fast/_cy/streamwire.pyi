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

from collections.abc import Callable, Iterator
from typing import Any

CHUNK_HEADER_SIZE: int

def encode_message(properties: bytes, body: bytes, exchange: str, routing_key: str) -> bytes:
    """The AMQP 1.0 message; ValueError for properties that do not decode."""

def append_message(buf: bytearray, publishing_id: int, properties: bytes, body: bytes, exchange: str,
                   routing_key: str) -> None:
    """Append a Publish frame's PublishedMessage: uint64 publishing id, uint32 size,
    ``encode_message(...)``. Nothing is appended on ValueError."""

def split_chunk(data: bytes | bytearray, pos: int, end: int, min_offset: int) -> tuple[int, int, list[bytes]]:
    """Records of the osiris chunk in ``data[pos:end]`` (a Deliver frame after its subscription id):
    (offset of the first record returned, chunk timestamp ms, records), records below ``min_offset``
    left out; with no records, the offset after the chunk. Non-user chunks give no records.
    StreamProtocolError for a chunk that does not parse or holds a compressed sub-batch."""

def message_body(msg: bytes) -> bytes:
    """The data sections of an AMQP 1.0 message joined (an amqp-value that is binary or a string
    counts too); ValueError for bytes that are not AMQP 1.0 sections."""


class TypedAppender:
    """Builds a batch of typed messages into a Publish frame in one compiled loop: per message the
    envelope, headers, properties and route from its class's ``wire.PublishPlan`` (``encode``: the
    bytes of ``outgoing.build`` and the default route) and the stored AMQP 1.0 message (as
    ``append_message``), with no Python object per message but its id.

    ``plans`` maps a class to its plan (``add_plan``); a message of a class without a plan, or one
    its plan declines (``encode`` answers None or raises), goes through ``fallback(msg) ->
    (exchange, routing_key, properties, body, message_id)`` (the publisher's general path, which
    raises the message's own error): the same bytes.
    """

    plans: dict[type, tuple[Any, str]]
    def __init__(self, fallback: Callable[[Any], tuple[str, str, bytes, bytes, Any]]) -> None: ...
    def add_plan(self, cls: type, plan: Any) -> None:
        """Messages of ``cls`` are built by ``plan.encode(msg) -> (message id, routing key, body,
        properties) | None`` and go to ``plan.exchange`` (a ``wire.PublishPlan``)."""
    def fill(self, buf: bytearray, publishing_id: int, it: Iterator[Any], max_count: int, limit: int,
             in_frame: int, ids: list[Any]) -> tuple[int, bool, tuple[bytes, bytes, str, str, Any] | None]:
        """Append messages from ``it`` (publishing ids from ``publishing_id`` on) until ``max_count``
        are appended or ``it`` ends; each appended message's id goes to ``ids``. Returns (appended,
        ``it`` exhausted, carry): carry is the message (properties, body, exchange, routing key, id)
        that was taken from ``it`` but not appended because ``buf`` would pass ``limit`` with it
        while it holds messages (``in_frame`` counts those already in ``buf`` before this call).
        An error (the fallback's, or ValueError for properties that do not decode) leaves the
        messages before it appended (as many as ids grew by) and nothing of the failing one."""

#: ``decoder(type_name)``: the payload decoder of a type, ``(payload dict, id, type, timestamp,
#: correlation id) -> message``, giving what ``convert`` gives for an envelope of that type whose
#: payload is a dict (``contracts._convert.payload_decoder``), or None (then ``convert``). When it is a
#: payload reader's bound ``decode``, the reader's ``decode_envelope`` reads an envelope that still
#: holds its raw payload (``Envelope.raw_payload``) with no payload dict: same values, same errors
PayloadDecoder = Callable[[str], Callable[[dict[str, Any], str, str, str, str | None], Any] | None]

def dispatch_records(records: list[bytes], start: int, decode: Callable[[bytes], Any],
                     lookup: Callable[[str], tuple[Any, ...]], convert: Callable[[Any, Any], Any],
                     registry: Any, decoder: PayloadDecoder | None = None,
                     ) -> tuple[int, int, int, tuple[BaseException, bytes, Any, Any] | None]:
    """A stream consumer's common case over ``records[start:]`` in one compiled loop: per record its
    body (``message_body``), ``env = decode(body)``, ``lookup(env.type)``; a type without handlers
    is counted as ignored; with one plain handler (a ``HandlerSpec`` neither async nor wanting a
    context) ``spec.fn(convert(env, registry))``; with a ``decoder``, the message of a dict payload
    comes from the type's decoder instead (asked once per type and call: a registry or codec
    change shows from the next call on). Returns (index of the first record not done,
    handled, ignored, failure): it stops before a record that needs the general path (a step
    raised, several handlers, an async or context handler: nothing of it ran), or at a record whose
    handler raised, with failure = (exception, body, envelope, message) (that record is done)."""

def dispatch_chunk(data: bytes | bytearray, pos: int, end: int, min_offset: int,
                   decode: Callable[[bytes], Any], lookup: Callable[[str], tuple[Any, ...]],
                   convert: Callable[[Any, Any], Any], registry: Any, decoder: PayloadDecoder | None = None,
                   ) -> tuple[int, int, int, int, int, tuple[BaseException, bytes, bytes, Any, Any] | None,
                              list[bytes]]:
    """``split_chunk`` and ``dispatch_records`` in one pass over the chunk in ``data[pos:end]``, with no
    bytes object per record the fast path handles (with the compiled ``decode_envelope`` as ``decode``,
    a one-part body in the plain form is read where it lies in the chunk, else its body is made and
    handed to ``decode``) and, with a ``decoder``, no Python frame per record but the handler's:
    (first, timestamp ms, done, handled, ignored, failure, rest). ``first`` is the offset of the
    first record at or after ``min_offset`` (with no such record: the offset after the chunk, and
    nothing else); ``done`` records from it were processed (handled, ignored, or the failed one);
    ``failure`` is (exception, record, body, envelope, message) of the last of them when its handler
    raised; ``rest`` are the records after the done ones (from offset ``first + done``), for the
    general path. The chunk is checked whole first: StreamProtocolError (as ``split_chunk``) before
    any handler runs."""

def sub_batch(frame: bytes | bytearray, head: int) -> tuple[bytearray, int, int, int]:
    """The PublishedMessages of a Publish frame (after its ``head`` bytes, left as they are) as one
    uncompressed sub-entry batch (the stream protocol's sub-entry batching: one publishing id, the
    first, for all of them; readers get every record, each at its own offset): (the new frame, first
    publishing id, last publishing id, messages). ValueError for entries that do not parse or more
    than 65535 messages."""
