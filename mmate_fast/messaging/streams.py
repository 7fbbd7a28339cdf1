"""Mmate messages on RabbitMQ Streams: typed publish in confirmed batches, handlers by contract type,
server-side offsets per consumer group.

Publishing (:class:`StreamPublisher`): a typed message is built by the same code as a queue publish
(``Publisher.prepare``: route, checks, ``outgoing.build``: the same envelope bytes, headers and
properties) and stored as RabbitMQ stores that publish when it lands in a stream (compiled
transcoding, see ``mmate_fast._cy.streamwire``), so an AMQP consumer of the stream reads exactly what
a queue consumer reads. ``publish_nowait`` appends to a batch that is written once per loop turn (or every
``batch_size`` messages) as one Publish frame; confirms are pipelined and ``flush()`` waits for them.
Without per-message options or interceptors, messages of a class the queue publisher has a compiled
plan for are built in one compiled loop per batch (``streamwire.TypedAppender``), with the same bytes.

Consuming (:class:`StreamConsumer`): each record's body is decoded as an envelope and dispatched to the
handlers registered for its type (the same ``Dispatcher``, ``MessageContext`` and interceptor
pipeline as queues). A stream is a log every consumer group reads in full, so a type without a
handler in this group is not a failure: it is counted in ``stats.ignored`` and passed. A record that
fails (not an AMQP message, not an envelope, a payload that does not fit its class, a handler error)
cannot be rejected back to a log: it is counted under its reason, logged, handed to ``dead_letter``
when one is set (the Client's copies it to ``dlq.{stream}.{group}``) and skipped; the consumer goes
on with the next record, so one bad record never stalls the group. Without wire or consume
interceptors, records whose type has one plain (sync, context-free) handler are decoded and handled
in one compiled pass over the chunk as it arrives (``streamwire.dispatch_chunk``); the others go
through the general path, in the same order.

A group (``group="billing"``) is a stream offset reference on the broker: the consumer resumes after
the last offset stored under it (else at ``offset``), stores its progress every ``store_every``
records and when stopped. RabbitMQ 3.10 has no single-active-consumer for streams: run one consumer
per group (two would both read everything).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
from collections import Counter, deque
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from mmate_fast import _backoff, errors
from mmate_fast._ext import load
from mmate_fast._transport.amqp10 import StreamProperties
from mmate_fast._transport.streams import OffsetSpec
from mmate_fast._transport.streams import StreamConnectionLike as StreamConnection
from mmate_fast._transport.streams import StreamSubscriptionLike as StreamSubscription
from mmate_fast.contracts import TypeRegistry, from_envelope
from mmate_fast.contracts._convert import payload_decoder
from mmate_fast.messaging.dispatcher import Dispatcher, MessageContext
from mmate_fast.messaging.pipeline import ConsumeContext, Pipeline, PublishContext
from mmate_fast.messaging.publisher import _NO_PLAN, Publisher

_wire = load("streamwire")
_frames = load("frames")
_message_body = _wire.message_body
_decode_envelope = load("envelope").decode_envelope
_TypedAppender = _wire.TypedAppender
_dispatch_records = _wire.dispatch_records
_dispatch_chunk = _wire.dispatch_chunk
_split_chunk = _wire.split_chunk

#: the options ``publish_many`` builds in one compiled loop (others take the general path)
_FAST_OPTIONS = frozenset({"persistent"})

log = logging.getLogger("mmate_fast.streams")

#: messages per Publish frame ``publish_nowait`` sends at most before it writes one (and at least
#: once per loop turn)
DEFAULT_BATCH = 500


class StreamPublisher:
    """Publishes typed Mmate messages to one stream. Create with :func:`open_publisher` (or
    ``client.stream_publisher(stream)``).

    Options are those of a queue publish (``Publisher.prepare``: ``correlation_id``, ``headers``,
    ``ttl`` (s), ``priority``, ``persistent``, ``reply_to``, ``kind``, ``exchange``/``routing_key``,
    kept as annotations; default: Mmate's route), checked the same way. Publish interceptors of
    ``pipeline`` run on ``publish`` and ``publish_many`` (``after_publish`` once the message is in
    the batch; the confirm is awaited after); ``publish_nowait`` refuses to run without them, as on
    queues.
    """

    def __init__(self, producer: Any, *, source: str | None = None, batch_size: int = DEFAULT_BATCH,
                 pipeline: Pipeline | None = None) -> None:
        self.producer = producer
        self.stream: str = producer.stream
        self.source = source
        self.batch_size = batch_size
        self.published = 0
        #: the queue publisher's building block (route, checks, encoder), never given a target
        self._core = Publisher(None, pipeline=pipeline, source=source)
        self.pipeline = self._core.pipeline
        self._scheduled = False
        self._loop = asyncio.get_running_loop()
        self._appenders: dict[bool, Any] = {}

    def _add(self, msg: Any, options: Mapping[str, Any]) -> str:
        if options.keys() <= _FAST_OPTIONS:  # the class's compiled plan, as publish_many
            ids: list[str] = []
            appender = self._appender(bool(options.get("persistent", True)))
            self.producer.append_typed(appender, iter((msg,)), 1, ids)
            self.published += 1
            return str(ids[0])
        exchange, routing_key, out = self._core.prepare(msg, **options)
        self.producer.append(out.properties, out.body, exchange, routing_key)
        self.published += 1
        return str(out.message_id)

    async def _add_intercepted(self, msg: Any, options: Mapping[str, Any]) -> str:
        """``_add`` through the publish interceptors; "" when one dropped the message."""
        opts = dict(options)
        ctx = PublishContext(msg, opts.pop("exchange", None), opts.pop("routing_key", None), opts)
        core = self._core

        def encode(c: PublishContext) -> None:
            c.exchange, c.routing_key, c.outgoing = core.prepare(
                c.message, exchange=c.exchange, routing_key=c.routing_key, headers=c.headers, **c.options)

        async def send(c: PublishContext) -> None:
            out = c.outgoing
            props = out.properties
            if c.amqp_headers:
                decoded, _ = _frames.decode_properties(props)
                decoded.headers = {**(decoded.headers or {}), **c.amqp_headers}
                props = _frames.encode_properties(decoded)
            self.producer.append(props, out.body, c.exchange or "", c.routing_key or "")
            self.published += 1

        await self.pipeline.publish(ctx, encode, send)
        if ctx.dropped or ctx.outgoing is None:
            return ""
        return str(ctx.outgoing.message_id)

    def publish_nowait(self, msg: Any, **options: Any) -> str:
        """Add ``msg`` to the current batch (written at the end of this loop turn, or now when it holds
        ``batch_size`` messages); returns its message id. Errors of the message
        (PayloadEncodeError, InvalidArgumentError, ...) raise here and add nothing."""
        if self.pipeline.has_publish:
            raise errors.MmateError("publish_nowait() cannot run the publish interceptors; "
                                    "use await publish() or publish_many()")
        producer = self.producer
        mid = self._add(msg, options)
        if producer.pending >= self.batch_size:
            producer.send()
        elif not self._scheduled:
            self._scheduled = True
            self._loop.call_soon(self._send_batch)
        return mid

    def _send_batch(self) -> None:
        self._scheduled = False
        if self.producer.pending:
            try:
                self.producer.send()
            except errors.MmateError as exc:  # the producer failed; the next call raises it
                log.warning("stream batch to %r not sent: %s", self.stream, exc)

    async def publish(self, msg: Any, *, timeout: float | None = None, **options: Any) -> str:
        """Publish ``msg`` and wait until the broker stored it (with everything batched before it);
        returns its message id ("" when an interceptor dropped it). StreamPublishError when it was
        refused."""
        if self.pipeline.has_publish:
            mid = await self._add_intercepted(msg, options)
        else:
            mid = self._add(msg, options)
        fut = self.producer.send()
        async with asyncio.timeout(timeout or self.producer.connection.timeout):
            await fut
        return mid

    async def publish_many(
        self, messages: Iterable[Any], *, timeout: float | None = None, **options: Any
    ) -> list[str]:
        """Publish ``messages`` in batches of ``batch_size`` with pipelined confirms, and wait until
        all are stored; returns their ids in order."""
        producer = self.producer
        ids: list[str] = []
        size = self.batch_size
        if self.pipeline.has_publish:
            for msg in messages:
                ids.append(await self._add_intercepted(msg, options))
                if producer.pending >= size:
                    producer.send()
                    if producer.in_flight > producer.max_in_flight:
                        await producer.wait_room()
        elif options.keys() <= _FAST_OPTIONS:  # the hot loop: compiled, a batch per call
            it = iter(messages)
            appender = self._appender(bool(options.get("persistent", True)))
            try:
                while True:
                    done = producer.append_typed(appender, it, size - producer.pending, ids)
                    if producer.pending >= size:
                        producer.send()
                        if producer.in_flight > producer.max_in_flight:
                            await producer.wait_room()
                    if done:
                        break
            except errors.MmateError as exc:
                self._sent_before(exc, ids)
                raise
            finally:
                self.published += len(ids)
        else:  # the steps of _add inlined
            prepare = self._core.prepare
            append = producer.append
            keep = ids.append
            batched = producer.pending
            try:
                for msg in messages:
                    exchange, routing_key, out = prepare(msg, **options)
                    append(out.properties, out.body, exchange, routing_key)
                    keep(out.message_id)
                    batched += 1
                    if batched >= size:
                        batched = 0
                        producer.send()
                        if producer.in_flight > producer.max_in_flight:
                            await producer.wait_room()
            except errors.MmateError as exc:
                self._sent_before(exc, ids)
                raise
            finally:
                self.published += len(ids)
        await producer.flush(timeout)
        return ids

    def _sent_before(self, exc: errors.MmateError, ids: list[str]) -> None:
        """A message of ``publish_many`` cannot be sent: the ones before it go; the error says so."""
        producer = self.producer
        if producer.pending and not producer._error:
            producer.send()
        if ids:
            exc.add_note(f"publish_many: the {len(ids)} messages before this one were sent "
                         f"(ids {ids[0]} .. {ids[-1]}); nothing after it")

    def _appender(self, persistent: bool) -> Any:
        """The compiled batch builder for ``publish_many`` with these options (one per option set).
        The first message of each class goes through ``prepare`` (checks, errors, the general path);
        its class then gets the queue publisher's compiled plan (``wire.PublishPlan``: template,
        kind, route) unless it has none (generic messages), so the next ones are built in the
        compiled loop with the same bytes."""
        appender = self._appenders.get(persistent)
        if appender is not None:
            return appender
        core = self._core

        def fallback(msg: Any) -> tuple[str, str, bytes, bytes, str]:
            exchange, routing_key, out = core.prepare(msg, persistent=persistent)
            cls = msg.__class__
            if cls not in built.plans:
                plan = core._new_plan((cls, None, None, None, persistent, False), msg)
                if plan is not _NO_PLAN:
                    built.add_plan(cls, plan)
            return exchange, routing_key, out.properties, out.body, out.message_id

        built: Any = _TypedAppender(fallback)
        self._appenders[persistent] = built
        return built

    async def flush(self, timeout: float | None = None) -> None:
        """Send what is batched and wait for every confirm (StreamPublishError if any was refused)."""
        await self.producer.flush(timeout)

    async def close(self) -> None:
        """Flush, then delete the publisher on the broker."""
        await self.producer.close()


async def open_publisher(
    connection: StreamConnection,
    stream: str,
    *,
    reference: str = "",
    source: str | None = None,
    batch_size: int = DEFAULT_BATCH,
    pipeline: Pipeline | None = None,
    sub_entries: bool = False,
) -> StreamPublisher:
    """A :class:`StreamPublisher` on ``stream`` (which must exist). With a ``reference`` the broker
    deduplicates: a producer restarted under the same reference goes on after the last stored id.
    ``sub_entries``: each batch written as one sub-entry batch (stream protocol sub-entry batching:
    much less broker work per message; one publishing id, confirm and deduplication unit per batch;
    every reader, RabbitMQ's AMQP 0-9-1 stream consumers included, still gets each message at its own
    offset)."""
    producer = await connection.producer(stream, reference=reference, sub_entries=sub_entries)
    return StreamPublisher(producer, source=source, batch_size=batch_size, pipeline=pipeline)


# --------------------------------------------------------------------------- consuming
class StreamDelivery:
    """One record of a stream as a handler's ``ctx.delivery``: ``body``, ``offset``, ``timestamp``
    (ms of its chunk), ``properties`` (decoded on first use, AMQP 0-9-1 names), ``routing_key``,
    ``exchange``."""

    __slots__ = ("_props", "body", "offset", "raw", "stream", "timestamp")

    redelivered = False
    undecodable = None
    oversized = 0
    raw_properties = None

    def __init__(self, stream: str, offset: int, timestamp: int, raw: bytes, body: bytes) -> None:
        self.stream = stream
        self.offset = offset
        self.timestamp = timestamp
        self.raw = raw
        self.body = body
        self._props: StreamProperties | None = None

    @property
    def delivery_tag(self) -> int:
        return self.offset

    @property
    def properties(self) -> StreamProperties:
        p = self._props
        if p is None:
            p = self._props = StreamProperties(self.raw)
        return p

    @property
    def routing_key(self) -> str:
        return str(self.properties.annotations.get("x-routing-key") or "")

    @property
    def exchange(self) -> str:
        return str(self.properties.annotations.get("x-exchange") or "")


@dataclass
class StreamConsumerStats:
    """Counters of one stream consumer."""

    received: int = 0
    handled: int = 0
    #: records of a type this group has no handler for (a log holds every type: not a failure)
    ignored: int = 0
    failed: int = 0
    dead_lettered: int = 0
    offsets_stored: int = 0
    #: times the consumer subscribed again after its connection was lost
    restarts: int = 0
    reasons: Counter[str] = field(default_factory=Counter)


@dataclass
class StreamFailure:
    """A record that could not be processed: skipped, and handed to the consumer's ``dead_letter``."""

    consumer: StreamConsumer
    delivery: StreamDelivery
    reason: str
    text: str
    exception: BaseException | None = None
    envelope: Any = None
    message: Any = None


StreamDeadLetter = Callable[[StreamFailure], Awaitable[None]]


class StreamConsumer:
    """Reads one stream for one consumer group. Create with :func:`consume_stream` (or
    ``client.subscribe_stream``); ``await stop()`` stores the group's offset and unsubscribes."""

    def __init__(
        self,
        connection: StreamConnection,
        stream: str,
        dispatcher: Dispatcher,
        *,
        group: str | None = None,
        offset: OffsetSpec = "next",
        store_every: int = 1000,
        credit: int = 8,
        dead_letter: StreamDeadLetter | None = None,
        pipeline: Pipeline | None = None,
        services: Any = None,
        registry: TypeRegistry | None = None,
        reconnect: Callable[[], Awaitable[StreamConnection]] | None = None,
    ) -> None:
        if group is not None and not (isinstance(group, str) and 0 < len(group.encode()) <= 256):
            raise errors.InvalidArgumentError(f"group must be a name of 1-256 bytes, got {group!r}", "group")
        if type(store_every) is not int or store_every < 1:
            raise errors.InvalidArgumentError(
                f"store_every must be a whole number >= 1, got {store_every!r}", "store_every"
            )
        if type(credit) is not int or not 1 <= credit <= 0xFFFF:
            raise errors.InvalidArgumentError(f"credit must be 1-65535 chunks, got {credit!r}", "credit")
        self.connection = connection
        self.stream = stream
        self.group = group
        self.offset = offset
        self.store_every = store_every
        self.credit = credit
        self.dead_letter = dead_letter
        self.dispatcher = dispatcher
        self._lookup = dispatcher.table.lookup
        self._registry = registry if registry is not None else dispatcher.registry
        #: a type's payload decoder (kept by the compiled pass for a chunk: no Python per record)
        self._decoder = functools.partial(payload_decoder, registry=self._registry)
        self.pipeline = pipeline if pipeline is not None else Pipeline()
        self.services = services
        self.stats = StreamConsumerStats()
        #: the offset of the last record processed (-1: none yet)
        self.last_offset = -1
        #: where this consumer started: "first"/"last"/"next", an offset or a datetime
        self.started_at: OffsetSpec | None = None
        self._stored = -1
        self._chunks: deque[tuple[int, int, list[bytes]]] = deque()
        self._wake = asyncio.Event()
        self._progress = asyncio.Event()
        self._sub: StreamSubscription | None = None
        self._worker: asyncio.Task[None] | None = None
        self._tasks: set[asyncio.Task[Any]] = set()
        self._stopping = False
        #: the worker is inside a chunk (a record may be awaiting its handler)
        self._busy = False
        #: the chunk being delivered went through _read_chunk's compiled pass
        self._direct = False
        #: gives a working stream connection after this one was lost (None: the consumer ends then)
        self.reconnect = reconnect
        #: why the consumer ended by itself (its stream deleted, its connection lost without
        #: ``reconnect``); None while it runs or after ``stop()``
        self.error: BaseException | None = None

    # ------------------------------------------------------------------ lifecycle
    async def start(self) -> StreamConsumer:
        """Subscribe: after the group's stored offset when it has one, else at ``offset``."""
        start: OffsetSpec = self.offset
        if self.group is not None:
            stored = await self.connection.query_offset(self.group, self.stream)
            if stored is not None:
                start = stored + 1
                self._stored = stored
        self.started_at = start
        self._worker = asyncio.get_running_loop().create_task(self._run())
        try:
            self._sub = await self.connection.subscribe(
                self.stream, self._on_chunk, offset=start, credit=self.credit
            )
        except BaseException:
            self._worker.cancel()
            raise
        self._sub._on_lost = self._on_lost
        self._sub.read_chunk = self._read_chunk
        return self

    def _read_chunk(
        self, data: bytes | bytearray, pos: int, end: int, min_offset: int
    ) -> tuple[int, int, list[bytes]]:
        """The subscription's chunk reader. While the worker is idle and no interceptor runs, the
        chunk's records are handled here, as they arrive, in one compiled pass (no bytes object per
        record, no task switch); what needs the general path (and every record while the worker is
        busy) is handed on in order as ``split_chunk`` would, to the worker."""
        pipeline = self.pipeline
        if self._chunks or self._busy or self._stopping or pipeline.has_wire or pipeline.has_consume:
            return _split_chunk(data, pos, end, min_offset)
        first, ts, done, handled, ignored, failure, rest = _dispatch_chunk(
            data, pos, end, min_offset, _decode_envelope, self._lookup, from_envelope, self._registry,
            self._decoder)
        self._direct = True
        if done:
            stats = self.stats
            stats.received += done
            stats.handled += handled
            stats.ignored += ignored
            self.last_offset = first + done - 1
            if failure is not None:
                exc, raw, body, env, msg = failure
                self._handler_failed(first + done - 1, ts, raw, body, env, msg, exc)
        return first + done, ts, rest

    def _on_chunk(self, sub: StreamSubscription, first: int, ts: int, records: list[bytes]) -> None:
        if self._sub is None:
            self._sub = sub
        if self._direct:  # _read_chunk handled all of it: done here, the worker is not woken
            self._direct = False
            if not records:
                self._chunk_done()
                return
        self._chunks.append((first, ts, records))
        self._wake.set()

    def _chunk_done(self) -> None:
        """After a chunk: credit for the next one, the group's offset when due, progress."""
        sub = self._sub
        if sub is not None:
            sub.release()
        if self.group is not None and self.last_offset - self._stored >= self.store_every:
            self.store_offset()
        self._progress.set()

    def _on_lost(self, exc: BaseException) -> None:
        log.warning(
            "stream consumer of %r (group %r) lost its subscription: %s", self.stream, self.group, exc
        )
        self._wake.set()

    async def stop(self, timeout: float = 10.0) -> None:
        """Finish the chunk in hand, store the group's offset, unsubscribe. Idempotent."""
        if self._stopping:
            return
        self._stopping = True
        self._wake.set()
        worker = self._worker
        if worker is not None:
            with contextlib.suppress(asyncio.CancelledError, TimeoutError):
                await asyncio.wait_for(asyncio.shield(worker), timeout)
            worker.cancel()
        sub = self._sub
        with contextlib.suppress(errors.MmateError, OSError):
            self.store_offset()
            if sub is not None and sub.error is None:
                await sub.close()
        if self._tasks:
            await asyncio.wait(self._tasks, timeout=timeout)

    def store_offset(self) -> bool:
        """Store the last processed offset under the group now (False: no group, or nothing new)."""
        if self.group is None or self.last_offset <= self._stored or self.connection.is_closed:
            return False
        self.connection.store_offset(self.group, self.stream, self.last_offset)
        self._stored = self.last_offset
        self.stats.offsets_stored += 1
        return True

    async def wait_for(self, offset: int, timeout: float = 10.0) -> None:
        """Wait until the record at ``offset`` was processed (OperationTimeout otherwise)."""
        try:
            async with asyncio.timeout(timeout):
                while self.last_offset < offset:
                    self._progress.clear()
                    await self._progress.wait()
        except TimeoutError:
            raise errors.OperationTimeout(
                f"stream consumer of {self.stream!r} reached offset {self.last_offset}, not {offset}, "
                f"within {timeout}s"
            ) from None

    # ------------------------------------------------------------------ the reader
    async def _run(self) -> None:
        chunks = self._chunks
        while True:
            if not chunks:
                if self._stopping:
                    return
                sub = self._sub
                if sub is not None and sub.error is not None:
                    if self.reconnect is None or not await self._resubscribe(sub.error):
                        self.error = self.error or sub.error
                        return
                    continue
                self._wake.clear()
                await self._wake.wait()
                continue
            first, ts, records = chunks.popleft()
            self._busy = True
            try:
                await self._process(first, ts, records)
            finally:
                self._busy = False
            self._chunk_done()
            if self._stopping:
                return

    async def _resubscribe(self, error: BaseException) -> bool:
        """The subscription was lost: subscribe again after the last record processed (or where this
        consumer started, when none was), on the connection ``reconnect`` gives, with the recovery
        backoff between attempts. False when stopped meanwhile or the stream is gone (deleted: its
        log with it; the consumer ends, ``error`` says why)."""
        assert self.reconnect is not None
        attempt = 0
        while not self._stopping:
            if isinstance(error, errors.StreamNotFoundError):
                log.error("stream consumer of %r (group %r) ends: %s", self.stream, self.group, error)
                self.error = error
                return False
            attempt += 1
            resume: OffsetSpec = self.last_offset + 1
            if self.last_offset < 0:
                resume = self.started_at if self.started_at is not None else self.offset
            log.warning("stream consumer of %r (group %r) lost its subscription (%s); subscribing again at "
                        "%r (attempt %d)", self.stream, self.group, error, resume, attempt)
            try:
                conn = await self.reconnect()
                self.connection = conn
                self._sub = None
                sub = await conn.subscribe(self.stream, self._on_chunk, offset=resume, credit=self.credit)
            except (errors.MmateError, OSError) as exc:
                error = exc
                await asyncio.sleep(_backoff.RECOVERY.delay(attempt))
                continue
            sub._on_lost = self._on_lost
            sub.read_chunk = self._read_chunk
            self._sub = sub
            self.stats.restarts += 1
            return True
        return False

    async def _process(self, first: int, ts: int, records: list[bytes]) -> None:
        stats = self.stats
        stats.received += len(records)
        n = len(records)
        i = 0
        handled = 0
        # without wire or consume interceptors, runs of records with one plain handler go through
        # the compiled loop; the general path below takes the records it stops before
        fast = not self.pipeline.has_wire and not self.pipeline.has_consume
        try:
            while i < n:
                if fast:
                    i, done, ignored, failure = _dispatch_records(
                        records, i, _decode_envelope, self._lookup, from_envelope, self._registry,
                        self._decoder)
                    handled += done
                    stats.ignored += ignored
                    if i >= n:
                        break
                    if failure is not None:
                        exc, body, env, msg = failure
                        self._handler_failed(first + i, ts, records[i], body, env, msg, exc)
                        i += 1
                        continue
                if await self._record(first + i, ts, records[i]):
                    handled += 1
                i += 1
        finally:  # counters and progress once per chunk (a record cancelled in its handler: not done)
            stats.handled += handled
            self.last_offset = first + i - 1

    async def _record(self, offset: int, ts: int, raw: bytes) -> bool:
        """One record through the general path (wire and consume interceptors, several, async or
        context handlers, failures); True when handled."""
        stats = self.stats
        stream = self.stream
        try:
            body = _message_body(raw)
        except ValueError as exc:
            self._fail(StreamDelivery(stream, offset, ts, raw, b""), "not-amqp", str(exc), exc)
            return False
        delivery = None
        if self.pipeline.has_wire:
            delivery = StreamDelivery(stream, offset, ts, raw, body)
            try:
                body = self.pipeline.verify(delivery, stream)
            except Exception as exc:
                why = exc.reason if isinstance(exc, errors.InterceptorError) else "interceptor-error"
                self._fail(delivery, why, str(exc) or type(exc).__name__, exc)
                return False
        try:
            env = _decode_envelope(body)
        except errors.EnvelopeError as exc:
            delivery = delivery or StreamDelivery(stream, offset, ts, raw, body)
            self._fail(delivery, exc.reason, str(exc), exc)
            return False
        handlers = self._lookup(env.type)
        if not handlers:
            stats.ignored += 1
            return False
        try:
            msg = from_envelope(env, self._registry)
        except (errors.ContractError, errors.EnvelopeError) as exc:
            delivery = delivery or StreamDelivery(stream, offset, ts, raw, body)
            self._fail(delivery, "contract-error", str(exc), exc, env)
            return False
        intercept = self.pipeline.has_consume
        ctx = None
        try:
            for spec in handlers:
                if (spec.wants_context or intercept) and ctx is None:
                    if delivery is None:
                        delivery = StreamDelivery(stream, offset, ts, raw, body)
                    ctx = MessageContext(delivery, env, msg, stream, self.services)
                if intercept:
                    cctx = ConsumeContext(delivery, env, msg, stream, spec, ctx)
                    await self.pipeline.consume(cctx, _call(spec, msg, ctx))
                    continue
                result = spec.fn(msg, ctx) if spec.wants_context else spec.fn(msg)
                if spec.is_async:
                    await result
        except Exception as exc:
            self._handler_failed(offset, ts, raw, body, env, msg, exc, delivery)
            return False
        return True

    def _handler_failed(self, offset: int, ts: int, raw: bytes, body: bytes, env: Any, msg: Any,
                        exc: Exception, delivery: StreamDelivery | None = None) -> None:
        log.error("handler for %s (id %s) on stream %r offset %d failed: %r", env.type, env.id,
                  self.stream, offset, exc)
        why = str(getattr(exc, "reason", "") or "") if isinstance(exc, errors.MmateError) else ""
        delivery = delivery or StreamDelivery(self.stream, offset, ts, raw, body)
        self._fail(delivery, why or "handler-error", f"{type(exc).__name__}: {exc}", exc, env, msg)

    def _fail(
        self,
        delivery: StreamDelivery,
        reason: str,
        text: str,
        exc: BaseException | None = None,
        env: Any = None,
        msg: Any = None,
    ) -> None:
        """A record failed: counted, logged, dead-lettered when a dead-letter target is set; skipped."""
        self.stats.failed += 1
        self.stats.reasons[reason] += 1
        if reason != "handler-error":
            log.warning(
                "skipping record %d of stream %r (%s): %s", delivery.offset, self.stream, reason, text
            )
        if self.dead_letter is not None:
            task = asyncio.get_running_loop().create_task(
                self._dead_letter(StreamFailure(self, delivery, reason, text, exc, env, msg))
            )
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _dead_letter(self, failure: StreamFailure) -> None:
        assert self.dead_letter is not None
        try:
            await self.dead_letter(failure)
        except Exception as exc:
            log.error(
                "dead-lettering record %d of stream %r failed (%r); it stays skipped",
                failure.delivery.offset,
                self.stream,
                exc,
            )
        else:
            self.stats.dead_lettered += 1


def _call(spec: Any, msg: Any, ctx: Any) -> Callable[[], Awaitable[Any]]:
    async def call() -> Any:
        result = spec.fn(msg, ctx) if spec.wants_context else spec.fn(msg)
        if spec.is_async:
            result = await result
        return result

    return call


async def consume_stream(
    connection: StreamConnection, stream: str, dispatcher: Dispatcher, **options: Any
) -> StreamConsumer:
    """Start a :class:`StreamConsumer` (``options``: see its constructor)."""
    return await StreamConsumer(connection, stream, dispatcher, **options).start()


__all__ = [
    "DEFAULT_BATCH",
    "StreamConsumer",
    "StreamConsumerStats",
    "StreamDeadLetter",
    "StreamDelivery",
    "StreamFailure",
    "StreamPublisher",
    "consume_stream",
    "open_publisher",
]
