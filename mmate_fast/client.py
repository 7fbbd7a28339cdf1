"""The front door: ``async with Client(url, service_name=...) as client`` wires a connection, the
Mmate topology, a publisher, a subscriber and a dispatcher.

``memory://`` gives the embedded in-memory broker (no setup), ``amqp://``/``amqps://`` RabbitMQ;
everything behaves the same on both.
"""
from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from typing import Any, TypeVar

from mmate_fast import errors
from mmate_fast._ext import COMPILED, load
from mmate_fast.amqp.channel_pool import ChannelPool
from mmate_fast.amqp.robust import RecoveryPolicy, connect_robust
from mmate_fast.bridge import Bridge, reply_persistent, reply_with_error
from mmate_fast.contracts import MessageKind, TypeRegistry, kind_of, message_type
from mmate_fast.contracts._plan import _PLANS
from mmate_fast.discovery import Discovery, DiscoveryOptions, EndpointContract
from mmate_fast.messaging import topology
from mmate_fast.messaging._channels import close_quietly
from mmate_fast.messaging._lean import check_wire_profile
from mmate_fast.messaging.dispatcher import Dispatcher, Handler
from mmate_fast.messaging.observer import combined as combined_observers
from mmate_fast.messaging.pipeline import Interceptor, Pipeline
from mmate_fast.messaging.publisher import Publisher
from mmate_fast.messaging.subscriber import FailureHandler, Subscriber, Subscription, check_consumer_limits
from mmate_fast.reliability.dead_lettering import DeadLettering
from mmate_fast.transports import connect, scheme_of

log = logging.getLogger("mmate_fast.client")
_replystep = load("replystep")
#: the compiled handler-result hook answers requests (the twin would only add a call)
_REPLY_HOOK = COMPILED.get("replystep", False)

_NOT_CONNECTED = "Client is not connected: use 'async with Client(...)' or await client.connect()"
_CLOSED = "this Client was closed: create a new Client (a closed one cannot be connected again)"

F = TypeVar("F", bound=Callable[..., Any])



def _reply_not_sent(result: Any, reply_to: str, exc: BaseException) -> None:
    """A handler's reply could not be sent (a named error from the publisher): logged, not raised."""
    log.warning("could not send the %s reply to %s: %s", message_type(result), reply_to, exc)

class Client:
    """A Mmate service endpoint.

    Handlers registered with :meth:`handler` (decorator) or :meth:`add_handler` are served from the
    service queue ``{service_name}-queue``: on :meth:`start_consuming` (or the first
    :meth:`run`), the queue is bound to the Mmate exchanges for every handled type — commands
    addressed to this service, events and queries of that type — and consumed with ``prefetch``.
    Several clients with the same service name are competing consumers (a work queue).

    A message that fails (handler error, bad body, unknown type) is kept in ``dlq.{queue}`` with the
    reason (declared on the first failure); ``dead_letter=False`` rejects it instead. A consumer the
    broker cancels (queue deleted, failover) comes back: its queue is declared and bound again and
    consumed, with the ``recovery`` backoff between attempts.

    ``url`` may name several RabbitMQ nodes (``amqp://u:p@h1:5672,h2:5673/`` or a list of URLs, option
    ``shuffle=true``): the client connects to one and fails over to the next when it is lost.
    ``queue_type="quorum"`` declares the service queue, the DLQs, TTL-retry queues, StageFlow queues
    and every durable queue of :meth:`declare_queue` / :meth:`subscribe` as quorum queues (replicated
    over the cluster); ``delivery_limit`` adds ``x-delivery-limit``: a message delivered more often
    (a handler that crashes its process, ...) goes to ``dlq.{queue}``.

    ``publish_channels=N`` spreads publishes round-robin over N channels (RabbitMQ runs each in its
    own process); ``wire_profile="lean"`` sends Go's body with Go's own properties (content type,
    delivery mode) and no AMQP header table (a Go consumer reads only the body; ours reads the body
    first): less broker CPU per message (benchmarks/broker_cost.py measures it). ``"go"`` (default)
    sends Go's headers and the .NET mapping's properties.
    """

    def __init__(self, url: str | Sequence[str] = "memory://", *, service_name: str = "service",
                 publisher_confirms: bool = True, prefetch: int = 10, concurrency: int | None = None,
                 publish_channels: int = 1, dead_letter: bool = True, fifo: bool = False,
                 declare_topology: bool = True, registry: TypeRegistry | None = None,
                 connect_timeout: float = 10.0, auto_bind: bool = True,
                 recovery: bool | RecoveryPolicy = True,
                 failure_handler: FailureHandler | None = None,
                 interceptors: Iterable[Interceptor] = (), source: str | None = None,
                 discovery: bool | DiscoveryOptions = False, wire_profile: str = "go",
                 queue_type: str = "classic", delivery_limit: int | None = None) -> None:
        check_consumer_limits(prefetch, concurrency)
        # queue_type / delivery_limit checked now; the service name itself is checked at connect
        topology.queue_arguments(f"{service_name}-queue", queue_type, delivery_limit)
        #: "go" (Go-identical headers, default) or "lean" (Go's properties only: messaging/_lean.py)
        self.wire_profile = check_wire_profile(wire_profile)
        if type(publish_channels) is not int or publish_channels < 1:
            raise errors.InvalidArgumentError(
                f"publish_channels must be a whole number of at least 1, got {publish_channels!r}",
                "publish_channels")
        self.url = url
        self.service_name = service_name
        self.publisher_confirms = publisher_confirms
        self.prefetch = prefetch
        self.concurrency = concurrency
        self.publish_channels = publish_channels
        self.dead_letter = dead_letter
        self.fifo = fifo
        #: how durable queues are declared: ``classic`` (RabbitMQ's default) or ``quorum``
        self.queue_type = queue_type
        #: quorum queues: ``x-delivery-limit`` (deliveries before a message goes to ``dlq.{queue}``)
        self.delivery_limit = delivery_limit
        self.declare_topology = declare_topology
        self.connect_timeout = connect_timeout
        #: RabbitMQ only: reconnect and restore topology, consumers and unconfirmed publishes
        self.recovery = recovery
        #: what happens to failed deliveries (e.g. ``TtlRetry(...)``); default: DLQ (or reject)
        self.failure_handler = failure_handler
        self.auto_bind = auto_bind
        self.dispatcher = Dispatcher(registry)
        #: interceptors shared by publishing and consuming (see mmate_fast.messaging.pipeline)
        self.pipeline = Pipeline(interceptors)
        #: value of the ``source``/``x-source`` headers (default ``mmate-python``)
        self.source = source
        self.connection: Any = None
        self.publisher: Publisher | None = None
        self._reply_publisher: Publisher | None = None
        self.subscriber: Subscriber | None = None
        self._pool: ChannelPool | None = None
        self._reply_pool: ChannelPool | None = None
        self._admin: Any = None
        self._dead_lettering: DeadLettering | None = None
        self._admin_lock = asyncio.Lock()
        #: the publisher while connected (None before connect and after close): one check per publish
        self._live_publisher: Publisher | None = None
        self._service_sub: Subscription | None = None
        self._consume_lock = asyncio.Lock()
        #: queue -> how this client declared it, and the bindings it made: what a restarted
        #: consumer re-applies when its queue was deleted
        self._declarations: dict[str, Callable[[Any], Awaitable[Any]]] = {}
        self._bindings: dict[str, set[tuple[str, str]]] = {}
        self._bindings_todo: list[topology.Binding] = []
        self._background: set[asyncio.Task[Any]] = set()
        self._bridge: Bridge | None = None
        #: contract discovery: started at connect when ``discovery`` is true (see ``self.discovery``)
        self._discovery_on = bool(discovery)
        self._discovery: Discovery | None = None
        if isinstance(discovery, DiscoveryOptions):
            self._discovery = Discovery(self, discovery)
        self._closed = False
        self._close_requested = asyncio.Event()
        self._observability: list[Any] = []
        self._observers: list[Any] = []
        self._tracer: Any = None
        self._streams: Any = None

    def __repr__(self) -> str:
        state = "connected" if self.connection is not None and not self.connection.is_closed else "idle"
        return f"<Client service={self.service_name!r} {state}>"

    @property
    def service_queue(self) -> str:
        return topology.service_queue(self.service_name)

    # ------------------------------------------------------------------ lifecycle
    async def connect(self) -> Client:
        """Connect, declare the Mmate exchanges and the service queue, open publishing channels.

        On RabbitMQ the connection recovers by itself (see ``recovery``); if anything here fails the
        connection is closed again before the error propagates (and ``connect()`` may be tried again).
        Raises ClientClosedError after ``close()``: a Client is used once.
        """
        if self._closed:
            raise errors.ClientClosedError(_CLOSED)
        if self.connection is not None:
            return self
        if scheme_of(self.url) in ("amqp", "amqps"):
            if self.recovery:
                policy = self.recovery if isinstance(self.recovery, RecoveryPolicy) else None
                self.connection = await connect_robust(self.url, policy=policy, timeout=self.connect_timeout)
            else:
                self.connection = await connect(self.url, timeout=self.connect_timeout)
        else:
            self.connection = await connect(self.url)
        try:
            await self._setup()
            if self._discovery_on:
                await self.discovery.start()
        except BaseException:
            conn, self.connection = self.connection, None
            self._admin = self._pool = self._reply_pool = self.publisher = self._reply_publisher = None
            self.subscriber = None
            self._live_publisher = None
            self.__dict__.pop("publish_event", None)
            try:
                await conn.close()
            except Exception:  # the original error matters more
                log.debug("close after a failed connect failed", exc_info=True)
            raise
        return self

    async def _setup(self) -> None:
        self._admin = await self.connection.channel()
        self._dead_lettering = dead_lettering = DeadLettering(self.connection, queue_type=self.queue_type)
        if self.declare_topology:
            await topology.declare_exchanges(self._admin)
            self._declarations[self.service_queue] = functools.partial(
                topology.declare_service_queue, service_name=self.service_name, fifo=self.fifo,
                queue_type=self.queue_type, delivery_limit=self.delivery_limit)
            await self._declarations[self.service_queue](self._admin)
            if self.delivery_limit is not None:  # poison messages are dead-lettered there by the broker
                await dead_lettering.ensure(self.service_queue)
        self._pool = await ChannelPool(self.connection, self.publish_channels,
                                       publisher_confirms=self.publisher_confirms).open()
        self.publisher = Publisher(self._pool, confirms=self.publisher_confirms, pipeline=self.pipeline,
                                   source=self.source, wire_profile=self.wire_profile)
        # replies go out on their own channel, without publisher confirms (the requester times out
        # and may ask again), so answering costs the broker no confirm bookkeeping; in a pool of
        # one, which reopens it when a refused publish closed it
        self._reply_pool = await ChannelPool(self.connection, 1, publisher_confirms=False).open()
        self._reply_publisher = replies = Publisher(self._reply_pool, confirms=False, pipeline=self.pipeline,
                                                    source=self.source, wire_profile=self.wire_profile)
        dlq_target = self._pool if self.publisher_confirms else await self._confirm_pool()
        policy = self.recovery if isinstance(self.recovery, RecoveryPolicy) else RecoveryPolicy()
        # the patterns' policies, injected into the messaging core: a failed request is answered with
        # an error reply (the bridge's), any other failed delivery ends in its DLQ (reliability's)
        self.subscriber = Subscriber(self.connection, self.dispatcher, services=self,
                                     result_hook=self._result_hook(),
                                     error_hook=functools.partial(reply_with_error, replies,
                                                                  dispatcher=self.dispatcher),
                                     dead_letter_target=dlq_target, pipeline=self.pipeline,
                                     restart_delay=policy.delay, dead_letterer=dead_lettering)
        self._live_publisher = self.publisher
        if type(self).publish_event is Client.publish_event:  # (a subclass's own stays in charge)
            # the busiest call straight to the publisher (no layer per event); dropped when unusable
            self.publish_event = self.publisher.publish_event  # type: ignore[method-assign]
        self._apply_observers()

    async def _confirm_pool(self) -> ChannelPool:
        return await ChannelPool(self.connection, 1, publisher_confirms=True).open()

    async def __aenter__(self) -> Client:
        return await self.connect()

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def close(self, timeout: float = 10.0) -> None:
        """Graceful: stop consuming, let in-flight handlers finish and ack (within ``timeout``),
        wait for outstanding publisher confirms, then close channels and the connection.

        Closing twice is harmless; afterwards every call raises ClientClosedError (the stats of the
        publisher and subscriptions stay readable)."""
        if self._closed:
            return
        self._closed = True
        self._close_requested.set()
        for obs in self._observability:  # stop answering health probes first: this client is going away
            await obs.close()
        self._observability.clear()
        if self._streams is not None:  # stream consumers store their offsets, publishers flush
            await self._streams.close(timeout)
        if self.connection is None:
            return
        for task in list(self._background):
            task.cancel()
        if self._bridge is not None:
            await self._bridge.close(timeout)
        if self._discovery is not None:
            await self._discovery.stop(timeout)  # announces this service's contracts unregistered
        if self.subscriber is not None:
            await self.subscriber.close(timeout)  # in-flight handlers may still publish and reply
        self._live_publisher = None
        self.__dict__.pop("publish_event", None)
        if self._pool is not None and self.publisher_confirms and not self.connection.is_closed:
            try:
                await self._pool.wait_for_confirms(timeout)
            except errors.MmateError as exc:
                log.warning("unconfirmed publishes at close: %s", exc)
        if not self.connection.is_closed:
            await self.connection.close()

    # ------------------------------------------------------------------ interceptors
    def use(self, interceptor: Interceptor) -> Interceptor:
        """Append an interceptor to the pipeline (runs on publish and consume); returns it."""
        self.pipeline.add(interceptor)
        return interceptor

    # ------------------------------------------------------------------ handlers
    def handler(self, message: type | str, *, bind: bool | None = None) -> Callable[[F], F]:
        """Decorator: ``@client.handler(OrderCreatedEvent)`` — handle that type on the service queue."""

        def register(fn: F) -> F:
            self.add_handler(message, fn, bind=bind)
            return fn

        return register

    def add_handler(self, message: type | str, fn: Handler, *, bind: bool | None = None) -> None:
        """Register ``fn`` for a message class or a type pattern; bind the service queue for it."""
        self.dispatcher.add_handler(message, fn)
        if self._discovery is not None:
            self._discovery.handlers_changed()  # announce the new endpoint
        if (self.auto_bind if bind is None else bind) and not isinstance(message, str):
            binding = topology.binding_for(kind_of(message), message_type(message), self.service_name)
            if binding is not None:
                self._bindings_todo.append(binding)
                if self._service_sub is not None and not self._closed:
                    task = asyncio.get_running_loop().create_task(self._apply_bindings())
                    self._background.add(task)
                    task.add_done_callback(self._background_done)

    def _background_done(self, task: asyncio.Task[Any]) -> None:
        self._background.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("binding the service queue for a new handler failed: %r", task.exception())

    async def bind(self, exchange: str, routing_key: str, queue: str | None = None) -> None:
        """Bind ``queue`` (default: the service queue) to ``exchange`` with ``routing_key`` (bound
        again if the queue is deleted under a consumer of this client)."""
        queue = queue or self.service_queue
        await (await self._admin_channel()).queue_bind(queue, exchange, routing_key)
        self._bindings.setdefault(queue, set()).add((exchange, routing_key))

    async def _apply_bindings(self) -> None:
        """Bind the service queue for the handlers registered so far (a binding that fails stays to do)."""
        bound = self._bindings.setdefault(self.service_queue, set())
        for b in list(self._bindings_todo):
            key = (b.exchange, b.routing_key)
            if key not in bound:
                await (await self._admin_channel()).queue_bind(self.service_queue, b.exchange, b.routing_key)
                bound.add(key)
            if b in self._bindings_todo:
                self._bindings_todo.remove(b)

    async def _redeclare(self, queue: str) -> None:
        """Declare ``queue`` again as this client declared it, with the bindings it made (called
        before a cancelled consumer of it is restarted: the queue may have been deleted)."""
        declare = self._declarations.get(queue)
        if declare is not None:
            await declare(await self._admin_channel())
        for exchange, routing_key in sorted(self._bindings.get(queue, ())):
            await (await self._admin_channel()).queue_bind(queue, exchange, routing_key)
        if queue == self.service_queue:
            await self._apply_bindings()

    async def start_consuming(self) -> Subscription:
        """Bind the service queue for the registered handlers and start consuming it (once: later and
        concurrent calls return the same Subscription)."""
        self._check_open()
        async with self._consume_lock:
            if self._service_sub is None:
                await self._apply_bindings()
                self._service_sub = await self._require_subscriber().subscribe(
                    self.service_queue, prefetch=self.prefetch, concurrency=self.concurrency,
                    dead_letter=self.dead_letter, failure_handler=self.failure_handler,
                    redeclare=functools.partial(self._redeclare, self.service_queue))
        return self._service_sub

    async def subscribe(self, queue: str, *, prefetch: int | None = None, concurrency: int | None = None,
                        dead_letter: bool | None = None, bindings: Iterable[tuple[str, str]] = (),
                        declare: bool = True, durable: bool = True,
                        failure_handler: FailureHandler | None = None,
                        registry: TypeRegistry | None = None, queue_type: str | None = None,
                        delivery_limit: int | None = None) -> Subscription:
        """Consume another queue with this client's handlers (declared durable and bound first
        unless ``declare=False``). A refused declare or bind (e.g. 406: the queue exists with other
        arguments) raises its named error and leaves this client's other calls working.
        ``registry``: decode this queue's deliveries with it instead of the client's registry.
        ``queue_type`` / ``delivery_limit``: as :meth:`declare_queue`."""
        if declare:
            await self.declare_queue(queue, durable=durable, queue_type=queue_type,
                                     delivery_limit=delivery_limit)
        for exchange, routing_key in bindings:
            await self.bind(exchange, routing_key, queue)
        return await self._require_subscriber().subscribe(
            queue, prefetch=self.prefetch if prefetch is None else prefetch,
            concurrency=concurrency if concurrency is not None else self.concurrency,
            dead_letter=self.dead_letter if dead_letter is None else dead_letter,
            failure_handler=failure_handler if failure_handler is not None else self.failure_handler,
            redeclare=functools.partial(self._redeclare, queue), registry=registry)

    async def declare_queue(self, queue: str, *, durable: bool = True,
                            arguments: Mapping[str, Any] | None = None, queue_type: str | None = None,
                            delivery_limit: int | None = None) -> None:
        """Declare ``queue`` (durable unless told otherwise, with ``arguments``, not exclusive, not
        auto-delete) on the admin channel; a consumer of it this client restarts (queue deleted,
        failover) declares it again the same way. A refused declare (406: the queue exists with other
        arguments or another type) raises its named error and leaves this client's other calls working.

        ``queue_type``: ``classic`` or ``quorum`` (default: the client's for a durable queue, classic
        for a transient one); ``delivery_limit``: a quorum queue's ``x-delivery-limit`` (default: the
        client's), poison messages then go to ``dlq.{queue}`` (declared here)."""
        kind = queue_type if queue_type is not None else (self.queue_type if durable else None)
        limit = delivery_limit
        if limit is None and kind == "quorum":
            limit = self.delivery_limit
        args = topology.queue_arguments(queue, kind, limit, arguments, durable=durable)
        declaration = functools.partial(_declare_queue, queue=queue, durable=durable, arguments=args)
        await declaration(await self._admin_channel())
        self._declarations[queue] = declaration
        poison_to_dlq = args is not None and args.get("x-dead-letter-routing-key") == f"dlq.{queue}"
        if limit is not None and poison_to_dlq and self._dead_lettering is not None:
            await self._dead_lettering.ensure(queue)

    async def run(self) -> None:
        """Start consuming (if not yet) and serve until cancelled, the client is closed, or the
        connection closes for good."""
        await self.start_consuming()
        waits: list[asyncio.Future[Any]] = [asyncio.ensure_future(self._close_requested.wait())]
        closed = getattr(self.connection, "closed", None)
        if closed is not None:
            waits.append(asyncio.shield(closed))
        try:
            await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for w in waits:
                w.cancel()

    def _result_hook(self) -> Callable[[Any, Any, Any], Any]:
        """The subscriber's result hook: ``_on_handler_result``, in front of it the compiled
        ``ReplyHook`` (a typed reply straight to ``reply_nowait``) unless a subclass overrides it."""
        if _REPLY_HOOK and type(self)._on_handler_result is Client._on_handler_result:
            return _replystep.ReplyHook(self, self._on_handler_result, _PLANS, MessageKind.REPLY,
                                        _reply_not_sent, errors.MmateError)
        return self._on_handler_result

    def _on_handler_result(self, result: Any, msg: Any, ctx: Any) -> Any:
        """A handler returned something: a reply goes back to the requester's reply address
        (through the default exchange, its publisher confirm not awaited), persistent as Go sends
        it unless the request came transient (the requester's ``persistent=False``)."""
        if kind_of(result) is not MessageKind.REPLY:
            return None
        reply_to = getattr(msg, "reply_to", None)  # ctx.reply_to's first answer, without the property
        if reply_to.__class__ is not str or not reply_to:
            reply_to = ctx.reply_to
            if not reply_to:
                log.warning("handler for %s returned a %s but the request has no reply address",
                            message_type(msg), message_type(result))
                return None
        publisher = self._reply_publisher
        if publisher is None:
            publisher = self._require_reply_publisher()  # raises
        correlation_id = ctx.envelope.correlation_id or ctx.correlation_id or ctx.message_id
        persistent = reply_persistent(ctx)
        if publisher.pipeline.has_publish:  # interceptors are async: the awaited path
            return publisher.publish_reply(result, reply_to, correlation_id=correlation_id,
                                           persistent=persistent)
        try:
            publisher.reply_nowait(result, reply_to, correlation_id, persistent)
        except errors.MmateError as exc:
            _reply_not_sent(result, reply_to, exc)
        return None

    # ------------------------------------------------------------------ request / reply
    @property
    def bridge(self) -> Bridge:
        """The request/reply bridge of this client (created on first use; its reply queue
        ``bridge.reply.{8 hex}`` is declared by the first request)."""
        if self._bridge is None:
            self._check_open()
            if self.publisher is None:
                raise errors.MmateError(_NOT_CONNECTED)
            self._bridge = Bridge(self.connection, self.publisher, registry=self.dispatcher.registry)
        return self._bridge

    def request(self, message: Any, timeout: float = 30.0, **options: Any) -> Awaitable[Any]:
        """Send a command or query and wait for its typed reply (Go's ``RequestCommand`` /
        ``RequestQuery``): ``reply = await client.request(GetOrder(order_id="1"), timeout=5)``.

        The reply address (the bridge's ``bridge.reply.{8 hex}`` queue) goes into the payload
        ``replyTo`` and a fresh correlation id into envelope ``correlationId``; commands need
        ``target_service``. Many requests may be in flight at once. ``options`` are the publish
        options (``headers``, ``ttl``, ``priority``, ...).

        Raises ``errors.RemoteError`` (``.code``, ``.message``, ``.reply``) when the answer is an
        error reply, ``errors.RequestTimeout`` after ``timeout`` seconds (a later reply is dropped
        and counted in ``client.bridge.stats.late_replies``).
        """
        self._check_open()
        return self.bridge.request(message, timeout, **options)

    # ------------------------------------------------------------------ contract discovery
    @property
    def discovery(self) -> Discovery:
        """The contract discovery of this client (created on first use; started at connect with
        ``Client(..., discovery=True)``, else by ``await client.discovery.start()``)."""
        if self._discovery is None:
            self._discovery = Discovery(self)
        return self._discovery

    async def discover(self, pattern: str = "", version: str = "", **options: Any) -> list[EndpointContract]:
        """Endpoint contracts matching ``pattern`` (``orders.*``) and ``version`` (``^1.2``): from this
        service, the registry of announcements and, when those have nothing, by asking over the broker
        (see ``Discovery.discover`` for ``remote``, ``window``, ``expect``)."""
        self._check_open()
        return await self.discovery.discover(pattern, version, **options)

    # ------------------------------------------------------------------ observability
    @property
    def observers(self) -> tuple[Any, ...]:
        """The MessageObservers of this client (see :meth:`add_observer`)."""
        return tuple(self._observers)

    def add_observer(self, observer: Any) -> None:
        """Tell ``observer`` (a :class:`mmate_fast.messaging.observer.MessageObserver`) about every
        awaited publish and every delivery's handler run: the cheap hook metrics use instead of an
        interceptor (a plain call per message; kept across ``connect``)."""
        if observer not in self._observers:
            self._observers.append(observer)
            self._apply_observers()

    def remove_observer(self, observer: Any) -> None:
        """Stop telling ``observer`` (no error if it was not added)."""
        if observer in self._observers:
            self._observers.remove(observer)
            self._apply_observers()

    @property
    def tracer(self) -> Any:
        """The MessageTracer of this client, or None (see :meth:`set_tracer`)."""
        return self._tracer

    def set_tracer(self, tracer: Any) -> None:
        """Call ``tracer`` (a :class:`mmate_fast.messaging.observer.MessageTracer`, e.g.
        ``mmate_fast.observability.TracingObserver``) before every awaited publish and around the
        handlers of every delivery (one per client; None removes it; kept across ``connect``)."""
        self._tracer = tracer
        self._apply_observers()

    def _apply_observers(self) -> None:
        effective = combined_observers(self._observers)
        for part in (self.publisher, self._reply_publisher, self.subscriber):
            if part is not None:
                part.observer = effective
                part.tracer = self._tracer

    async def serve_observability(self, port: int = 9090, *, host: str = "127.0.0.1", **options: Any) -> Any:
        """Serve ``/health``, ``/health/ready``, ``/health/live`` and ``/metrics`` for this client on
        ``host:port`` (``port=0``: a free one, see ``.url``) until the client closes; returns the
        :class:`mmate_fast.observability.Observability` (``.health`` to add your own checks,
        ``.metrics.registry``). ``options`` are Observability's (``registry``, ``per_message``,
        ``thresholds``, ``metrics``, ...). Needs the ``observability`` extra."""
        self._check_open()
        from mmate_fast.observability import Observability

        obs = Observability(self, host=host, port=port, **options)
        try:
            await obs.start()
        except BaseException:
            await obs.close()
            raise
        self._observability.append(obs)
        return obs

    def channel_states(self) -> dict[str, bool]:
        """Name -> open, for the channels this client publishes and consumes on (health checks):
        ``publish-{n}``, ``reply``, ``consume:{queue}``. Empty before connect."""
        states: dict[str, bool] = {}
        if self._pool is not None:
            for i, ch in enumerate(self._pool.channels, 1):
                states[f"publish-{i}"] = ch.is_open
        if self._reply_pool is not None:
            for ch in self._reply_pool.channels:
                states["reply"] = ch.is_open
        if self.subscriber is not None:
            for i, sub in enumerate(self.subscriber.subscriptions, 1):
                name = f"consume:{sub.queue}"
                states[name if name not in states else f"{name}#{i}"] = sub.channel.is_open
        return states

    # ------------------------------------------------------------------ state checks
    def _unusable(self) -> errors.MmateError:
        """Why this client cannot be used now: closed, or not connected yet."""
        return errors.ClientClosedError(_CLOSED) if self._closed else errors.MmateError(_NOT_CONNECTED)

    def _check_open(self) -> None:
        if self._closed or self.connection is None:
            raise self._unusable()

    async def _admin_channel(self) -> Any:
        """The channel for declares and binds, reopened when a refused call (404, 406, ...) closed it:
        a refused call fails alone, the next one works. The dead channel is closed and forgotten."""
        self._check_open()
        admin = self._admin
        if admin is not None and admin.is_open:
            return admin
        async with self._admin_lock:
            self._check_open()
            admin = self._admin
            if admin is None or not admin.is_open:
                log.info("the admin channel was closed by a refused call; opening a new one")
                await close_quietly(admin)
                self._admin = admin = await self.connection.channel()
        return admin

    def _require_publisher(self) -> Publisher:
        publisher = self._live_publisher
        if publisher is None:
            raise self._unusable()
        return publisher

    def _require_reply_publisher(self) -> Publisher:
        if self._reply_publisher is None:
            raise errors.MmateError(_NOT_CONNECTED)
        return self._reply_publisher

    def _require_subscriber(self) -> Subscriber:
        self._check_open()
        if self.subscriber is None:
            raise errors.MmateError(_NOT_CONNECTED)
        return self.subscriber

    # ------------------------------------------------------------------ publishing
    def publish_event(self, event: Any, **options: Any) -> Awaitable[str]:
        """Publish an event to ``mmate.events`` / ``evt.{aggregateId}.{Type}``; returns its id."""
        return self._require_publisher().publish(event, kind=MessageKind.EVENT, **options)

    def publish_command(self, command: Any, **options: Any) -> Awaitable[str]:
        """Publish a command to ``mmate.commands`` / ``cmd.{targetService}.{Type}``."""
        return self._require_publisher().publish_command(command, **options)

    def publish_query(self, query: Any, **options: Any) -> Awaitable[str]:
        """Publish a query to ``mmate.queries`` / ``qry.{Type}``."""
        return self._require_publisher().publish_query(query, **options)

    async def publish_reply(self, reply: Any, reply_to: str, **options: Any) -> str:
        """Send a reply to a requester's queue through the default exchange."""
        return await self._require_publisher().publish_reply(reply, reply_to, **options)

    def publish(self, message: Any, **options: Any) -> Awaitable[str]:
        """Generic publish: route by kind unless ``exchange``/``routing_key`` are given. Options:
        ``exchange``, ``routing_key``, ``headers``, ``correlation_id``, ``ttl`` (s, AMQP expiration),
        ``priority`` (AMQP priority), ``persistent``, ``mandatory``, ``timeout``. With publisher
        confirms the message is sent at once and the result is its confirm (awaiting it gives the
        id once the broker stored the message), so ``asyncio.gather`` over many publishes shares
        the broker's round trips."""
        return self._require_publisher().publish(message, **options)

    async def publish_batch(self, messages: Iterable[Any], **options: Any) -> list[str]:
        """Publish many messages pipelined: sent ``window // 2`` (default 1000) at a time with at most
        ``window`` (2000) unconfirmed; returns their ids once every one is confirmed."""
        return await self._require_publisher().publish_batch(messages, **options)

    # ------------------------------------------------------------------ RabbitMQ Streams
    #: the stream port's URL (``rabbitmq-stream://user:pass@host:5552/vhost``); None: the client's
    #: ``amqp://`` URL with port 5552
    stream_url: str | None = None

    def _stream_side(self) -> Any:
        self._check_open()
        if self._streams is None:
            from mmate_fast._client_streams import ClientStreams

            self._streams = ClientStreams(self)
        return self._streams

    async def create_stream(self, stream: str, **options: Any) -> bool:
        """Create a stream (``max_length_bytes``, ``max_age`` e.g. ``"7D"``, ``max_segment_size_bytes``,
        ``arguments``); False when it existed. Streams need RabbitMQ's stream plugin (port 5552)."""
        return bool(await self._stream_side().create(stream, **options))

    async def delete_stream(self, stream: str) -> bool:
        """Delete a stream and everything in it; False when there was none."""
        return bool(await self._stream_side().delete(stream))

    async def stream_publisher(self, stream: str, **options: Any) -> Any:
        """The StreamPublisher of ``stream`` (mmate_fast.messaging.streams): ``publish_nowait`` +
        ``flush`` for the fastest confirmed pipeline."""
        return await self._stream_side().publisher(stream, **options)

    async def publish_to_stream(self, stream: str, message: Any, **options: Any) -> str:
        """Publish a typed message to a stream and wait until it is stored; returns its id. Same
        envelope, headers and properties as a queue publish (``options`` as for ``publish``)."""
        return str(await self._stream_side().publish(stream, message, **options))

    async def publish_batch_to_stream(self, stream: str, messages: Iterable[Any],
                                      **options: Any) -> list[str]:
        """Publish many messages to a stream in confirmed batches; returns their ids."""
        return list(await self._stream_side().publish_many(stream, messages, **options))

    async def subscribe_stream(self, stream: str, *, group: str | None = None, offset: Any = "next",
                               **options: Any) -> Any:
        """Consume a stream with this client's handlers (a StreamConsumer). ``group``: the offset
        reference on the broker (resume after the last stored offset; one consumer per group);
        ``offset``: where to start without one (``"first"``, ``"last"``, ``"next"``, an offset, a
        datetime). Failed records are skipped, counted and copied to ``dlq.{stream}.{group}``.
        ``dispatcher=Dispatcher()`` gives this group handlers of its own instead of the client's."""
        return await self._stream_side().subscribe(stream, group=group, offset=offset, **options)


async def _declare_queue(channel: Any, queue: str, durable: bool,
                         arguments: dict[str, Any] | None = None) -> None:
    """How ``Client.subscribe`` / ``declare_queue`` declare a queue (also when its consumer is restarted)."""
    await channel.queue_declare(queue, durable=durable, arguments=arguments)

