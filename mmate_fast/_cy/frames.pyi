"""AMQP 0-9-1 frame codec (compiled: src_cy/frames.pyx; twin: mmate_fast/_py/frames.py).

Fast paths: split a byte stream into frames; assemble basic.deliver / basic.get-ok / basic.return
with their content header and body into one ``Delivery``; decode basic.ack / basic.nack into
``Confirm``; encode basic.publish + content header + body straight into a bytearray. Every other
method frame is decoded and encoded with pamqp.

Field tables are encoded with Go-readable tags only (amqp091-go cannot read ``u``, ``i``, ``L``):
bool->t, int in int32 range->I, other int in int64 range->l (else ValueError), float->d, str->S,
bytes/bytearray/memoryview->x, None->V, dict->F, list/tuple->A, datetime->T (UTC seconds),
decimal.Decimal->D, ``Typed(tag, value)`` -> exactly that tag (``u``/``i``/``L`` only with
``go_safe=False``: amqp091-go cannot read them, see ``Typed``). Decoding accepts every tag pamqp and
RabbitMQ know (t b B s u I i l L f d D S x A T F V; ``s`` is a signed 16-bit int as RabbitMQ sends it).
Integers and ``D`` decimals decode exactly (whatever the thread's decimal context); a long string ``S``
that is not UTF-8 decodes to bytes.
"""
from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from pamqp.base import Frame as PamqpFrame

FRAME_METHOD: int  # 1
FRAME_HEADER: int  # 2
FRAME_BODY: int  # 3
FRAME_HEARTBEAT: int  # 8
FRAME_END: int  # 0xCE
FRAME_MIN_SIZE: int  # 4096: the smallest frame_max a peer may negotiate
FRAME_MAX_LIMIT: int  # 0xFFFFFFFF: the largest frame_max a tune can carry
DEFAULT_MAX_MESSAGE_SIZE: int  # 128 MiB, RabbitMQ's own default max_message_size
HEARTBEAT_FRAME: bytes  # b"\x08\x00\x00\x00\x00\x00\x00\xce"

#: field types amqp091-go (mmate-go's client) cannot read: one such header kills a Go consumer's connection
GO_UNSAFE_TAGS: frozenset[str]

class Typed:
    """A field-table value with an explicit AMQP type tag, e.g. ``Typed("B", 5)`` for a Go uint8.

    The Go-unsafe tags ``u``, ``i`` and ``L`` raise InvalidArgumentError unless ``go_safe=False``
    says that no Go peer reads the header. Immutable (hashable; the tag stays the checked one)."""

    @property
    def tag(self) -> str: ...
    @property
    def value(self) -> Any: ...
    @property
    def go_safe(self) -> bool: ...
    def __init__(self, tag: str, value: Any, *, go_safe: bool = True) -> None: ...
    def __eq__(self, other: object) -> bool: ...
    def __repr__(self) -> str: ...

class BasicProperties:
    """The 14 basic content-header properties; ``None`` means absent. ``timestamp`` is POSIX seconds.
    The compiled reader checks a received header table as it comes (a bad one marks the delivery
    undecodable, as before) and decodes ``headers`` on first access; the twin decodes at once."""

    content_type: str | None
    content_encoding: str | None
    headers: dict[str, Any] | None
    delivery_mode: int | None
    priority: int | None
    correlation_id: str | None
    reply_to: str | None
    expiration: str | None
    message_id: str | None
    timestamp: int | None
    type: str | None
    user_id: str | None
    app_id: str | None
    cluster_id: str | None
    def __init__(
        self,
        content_type: str | None = None,
        content_encoding: str | None = None,
        headers: Mapping[str, Any] | None = None,
        delivery_mode: int | None = None,
        priority: int | None = None,
        correlation_id: str | None = None,
        reply_to: str | None = None,
        expiration: str | None = None,
        message_id: str | None = None,
        timestamp: int | None = None,
        type: str | None = None,
        user_id: str | None = None,
        app_id: str | None = None,
        cluster_id: str | None = None,
    ) -> None: ...
    def __eq__(self, other: object) -> bool: ...
    def __repr__(self) -> str: ...
    def to_dict(self) -> dict[str, Any]:
        """Only the properties that are set."""

class Delivery:
    """A complete message from the broker: basic.deliver (kind 0), basic.get-ok (1), basic.return (2).

    Fields that do not apply to the kind are ``""``/0/False.

    A message the broker forwards but we cannot fully decode still arrives, marked: ``undecodable``
    says what failed (``None`` on every normal delivery). When its property list did not decode (a
    header table nested deeper than 64, a ``T`` timestamp out of range, a header key or shortstr
    property that is not UTF-8, an unknown field tag, a length running past the frame, ...),
    ``properties`` is an empty ``BasicProperties()`` and ``raw_properties`` holds the property bytes
    exactly as in the frame (flags and values). An exchange or routing key that is not UTF-8 is
    decoded with ``surrogateescape`` (``.encode("utf-8", "surrogateescape")`` gives the bytes back);
    its properties decode as usual. Several failures are joined with ``"; "``.

    A delivery whose content header declares a body larger than the reader's ``max_message_size``
    is never held in memory: its body frames are counted and dropped as they arrive, and it is handed
    on with its properties decoded as usual, ``body == b""``, ``oversized`` = the declared body size
    and ``undecodable`` saying ``"body of N bytes exceeds max_message_size M"``. ``oversized`` is 0
    on every other delivery.
    """

    KIND_DELIVER: int  # 0  (class attribute)
    KIND_GET_OK: int  # 1
    KIND_RETURN: int  # 2
    kind: int
    channel: int
    consumer_tag: str
    delivery_tag: int
    redelivered: bool
    exchange: str
    routing_key: str
    message_count: int  # get-ok only
    reply_code: int  # return only
    reply_text: str  # return only
    properties: BasicProperties
    body: bytes
    undecodable: str | None
    raw_properties: bytes | None
    oversized: int  # declared body size of a dropped (too large) body; 0 normally
    def __init__(self, kind: int = 0, channel: int = 0, consumer_tag: str = "", delivery_tag: int = 0,
                 redelivered: bool = False, exchange: str = "", routing_key: str = "",
                 message_count: int = 0, reply_code: int = 0, reply_text: str = "",
                 properties: BasicProperties | None = None, body: bytes = b"",
                 undecodable: str | None = None, raw_properties: bytes | None = None,
                 oversized: int = 0) -> None: ...
    def __repr__(self) -> str: ...

class Confirm:
    """basic.ack (nack=False) or basic.nack (nack=True) from the broker (publisher confirms)."""

    channel: int
    delivery_tag: int
    multiple: bool
    nack: bool

class MethodFrame:
    """Any other method frame, decoded by pamqp (``method`` is e.g. a pamqp.commands.Queue.DeclareOk)."""

    channel: int
    method: PamqpFrame

class Heartbeat:
    """A heartbeat frame (channel 0)."""

    channel: int

class FrameReader:
    """Incremental decoder: feed it whatever ``data_received`` got, get complete items back.

    Raises mmate_fast.errors.FrameError (reply_code 501 bad frame end / oversize / unknown frame type,
    502 undecodable method frame or a content header shorter than its 12-byte prefix, 505 content
    frame where none is expected or a method frame in the middle of content) and never anything else,
    on any input. After an error the reader is unusable. Property values that do not decode in a
    content header that frames never raise: that Delivery is marked ``undecodable``.

    Input is bounded: ``pending()`` never exceeds one frame plus the bodies of the deliveries being
    assembled, each at most ``max_message_size``; a larger delivery is dropped as it arrives and
    handed on marked ``oversized`` (see ``Delivery``). Neither limit can be switched off: setting
    ``frame_max`` outside 4096..2**32-1 or ``max_message_size`` below 1 raises ValueError (a non-int
    TypeError); both may be changed between feeds (the connection sets the negotiated frame_max).
    """

    #: frames larger than this (payload + 8) raise FrameError(501); 4096..2**32-1
    frame_max: int
    #: a delivery declaring a larger body is dropped and marked ``oversized``; 1..2**64-1 bytes
    max_message_size: int
    #: deliveries handed on marked ``oversized`` so far
    oversized_count: int
    def __init__(self, frame_max: int = 131072, max_message_size: int = 134217728) -> None: ...
    def feed(
        self, data: bytes | bytearray | memoryview
    ) -> list[Delivery | Confirm | MethodFrame | Heartbeat]:
        """Consume ``data`` and return every item completed by it, in wire order."""
    def pending(self) -> int:
        """Bytes buffered but not yet forming a complete item."""
    #: (delivery, exception) of every hook call that raised (the delivery counts as handed on);
    #: the caller reports and clears them
    hook_errors: list[tuple[Delivery, Exception]]
    def set_hook(self, channel: int, consumer_tag: str, fn: Callable[[Delivery], Any],
                 tag_base: int = 0) -> None:
        """From now on, a basic.deliver of ``consumer_tag`` on ``channel`` goes to ``fn(delivery)``
        the moment it is complete, inside ``feed``, instead of into its result: no item and no
        Python loop per message (the AMQP Channel registers its consumer's ``channel_hook``). Only when
        nothing completed earlier in the same ``feed`` waits in the result (wire order is kept) and
        the delivery is not ``oversized``; otherwise it is returned as usual. An exception from
        ``fn`` is kept in ``hook_errors``; the reader goes on. ``tag_base`` (a recovering channel's
        later generations shift their tags): added to the delivery tag of what goes to ``fn`` (a
        delivery returned as an item keeps the broker's tag)."""
    def clear_hook(self, channel: int, consumer_tag: str | None = None) -> None:
        """Forget the hook of one consumer of ``channel`` (None: every hook of the channel)."""

#: out-of-order settled delivery tags an Acks remembers for coalescing (past it: not coalesced)
MAX_OUT_OF_ORDER: int

class Acks:
    """One AMQP channel's settle bookkeeping, compiled so that acking is one C call: consecutive
    in-order ``ack`` calls within one loop turn leave as a single ``basic.ack(multiple=True)`` frame
    (``emit``, which the connection calls when it flushes: the channel is appended to the
    connection's ``_ack_dirty`` and a flush scheduled on the first ack of a run); any other ack is
    written at once, after the pending run. ``channel`` must have ``_closed_exc`` and
    ``_raise_closed()`` (an ack on a closed channel raises that error; a run pending when it closed
    is dropped); ``connection`` must have ``_wbuf``, ``_ack_dirty``, ``_flush_pending`` and
    ``_schedule_flush()``."""

    def __init__(self, channel: Any, connection: Any, channel_id: int) -> None: ...
    @property
    def settled_upto(self) -> int:
        """Every delivery tag up to this one is settled."""
    @property
    def pending(self) -> int:
        """In-order acks waiting for ``emit``."""
    def ack(self, delivery_tag: int, multiple: bool = False) -> None:
        """basic.ack (the channel's ``basic_ack``)."""
    def shifted(self, tag_base: int) -> ShiftedAck:
        """``ack`` for delivery tags shifted up by ``tag_base`` (what a hook set with that
        ``tag_base`` sees): ``shifted(base)(tag)`` acks ``tag - base`` here (compiled: in C)."""
    def settle(self, delivery_tag: int, multiple: bool) -> None:
        """Advance the settled watermark (nack, reject, no-ack deliveries)."""
    def emit(self) -> None:
        """Write the pending in-order ack run into the connection's buffer."""

class ShiftedAck:
    """``Acks.shifted(base)``: ``(tag, multiple=False)`` acks ``tag - base`` (a tag below the base:
    ValueError)."""

    base: int
    def __call__(self, delivery_tag: int, multiple: bool = False) -> None: ...

def encode_table(table: Mapping[str, Any]) -> bytes:
    """Field table payload WITH its 4-byte length prefix. Raises ValueError/TypeError on bad values."""

def decode_table(data: bytes | bytearray | memoryview, offset: int = 0) -> tuple[dict[str, Any], int]:
    """Decode a length-prefixed field table at ``offset``; returns (table, offset after it).
    Raises FrameError (502) when it does not decode."""

def encode_properties(props: BasicProperties | None) -> bytes:
    """Property-flags + property list of a content header (no class/weight/size prefix).

    The result can be cached and passed to ``append_publish`` again and again.
    """

def decode_properties(data: bytes | bytearray | memoryview, offset: int = 0) -> tuple[BasicProperties, int]:
    """Inverse of ``encode_properties``; returns (properties, offset after them).
    Raises FrameError (502) when they do not decode."""

def append_publish(
    out: bytearray,
    channel: int,
    exchange: str,
    routing_key: str,
    body: bytes | bytearray | memoryview,
    encoded_properties: bytes,
    mandatory: bool = False,
    frame_max: int = 131072,
) -> None:
    """Append basic.publish + content header + body frame(s) (split at frame_max) to ``out``.

    Raises ValueError for exchange/routing key longer than 255 bytes (UTF-8) or a frame_max < 4096.
    """

def append_ack(out: bytearray, channel: int, delivery_tag: int, multiple: bool = False) -> None:
    """Append a basic.ack method frame."""

def append_nack(out: bytearray, channel: int, delivery_tag: int, multiple: bool = False,
                requeue: bool = True) -> None:
    """Append a basic.nack method frame."""

def append_reject(out: bytearray, channel: int, delivery_tag: int, requeue: bool = True) -> None:
    """Append a basic.reject method frame."""

def marshal_method(method: PamqpFrame, channel: int) -> bytes:
    """Encode any method frame (pamqp), except that field tables in it use the Go-safe encoder."""

__all__ = [
    "DEFAULT_MAX_MESSAGE_SIZE", "FRAME_BODY", "FRAME_END", "FRAME_HEADER", "FRAME_HEARTBEAT",
    "FRAME_MAX_LIMIT", "FRAME_METHOD", "FRAME_MIN_SIZE", "GO_UNSAFE_TAGS", "HEARTBEAT_FRAME",
    "BasicProperties", "Confirm", "Delivery", "FrameReader", "Heartbeat", "MethodFrame", "Typed",
    "append_ack", "append_nack", "append_publish", "append_reject", "decode_properties", "decode_table",
    "encode_properties", "encode_table", "marshal_method",
]
