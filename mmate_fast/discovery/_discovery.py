"""``Discovery``: contract discovery of one Client (wire-protocol.md §9).

While running it

- keeps this service's endpoint contracts: one per handled message class, extracted from the
  client's handlers automatically (``_extract``), plus the ones given to :meth:`register_endpoint`;
- announces them (``ContractAnnouncement``) at start, for each endpoint added or removed later, every
  ``interval`` seconds, and as ``unregistered`` at stop;
- keeps a live registry of every announcement on ``mmate.contracts`` (Go's included) through an
  exclusive, auto-delete queue of its own, ``contract.registry.{service}.{8 hex}`` bound to
  ``contract.announce`` (Go's ``contract.announce.{service}`` is shared by the instances of a
  service, so each announcement would reach only one of them); an announcement that does not decode
  goes to ``dlq.contract.announce`` with its reason and leaves the registry as it was;
- answers discovery requests on ``contract.discover`` (``_responder``).

:meth:`discover` answers from the local contracts and the registry and, when they have nothing (or
``remote=True``), asks over the broker (``_query``).
"""
from __future__ import annotations

import asyncio
import datetime
import logging
import uuid
from dataclasses import dataclass, replace
from typing import Any

from mmate_fast.discovery._announcer import ANNOUNCE_KEY, CONTRACTS_EXCHANGE, Announcer
from mmate_fast.discovery._contract import (
    REGISTERED,
    UNREGISTERED,
    ContractAnnouncement,
    ContractDiscoveryRequest,
    ContractDiscoveryResponse,
    EndpointContract,
)
from mmate_fast.discovery._extract import endpoint_for, schema_of
from mmate_fast.discovery._query import DISCOVER_QUEUE, aggregate, ask
from mmate_fast.discovery._registry import ContractRegistry
from mmate_fast.discovery._responder import Responder
from mmate_fast.errors import ContractError, InvalidArgumentError, MmateError, PreconditionFailedError
from mmate_fast.messaging._channels import close_quietly
from mmate_fast.messaging.dispatcher import Dispatcher
from mmate_fast.messaging.subscriber import Subscriber
from mmate_fast.reliability.dead_lettering import DeadLettering

log = logging.getLogger("mmate_fast.discovery")

#: bad announcements of every instance end in ``dlq.contract.announce``
ANNOUNCE_DLQ_OF = "contract.announce"
REGISTRY_QUEUE_PREFIX = "contract.registry."


@dataclass(frozen=True)
class DiscoveryOptions:
    """How a Client's Discovery behaves (``Client(..., discovery=DiscoveryOptions(...))``).

    ``interval``: seconds between re-announcements (Go: 30); ``expire_intervals``: a contract not
    announced again within that many intervals leaves the registry; ``window``: seconds a remote
    query collects answers (Go: 5); ``version``/``timeout``/``max_retries``: what extracted
    endpoints announce; ``announce``/``listen``/``respond`` switch the three roles."""

    interval: float = 30.0
    expire_intervals: int = 3
    window: float = 5.0
    version: str = "1.0.0"
    timeout: str = "30s"
    max_retries: int = 3
    announce: bool = True
    listen: bool = True
    respond: bool = True

    def __post_init__(self) -> None:
        if not (isinstance(self.interval, int | float) and self.interval > 0):
            raise InvalidArgumentError(
                f"interval must be a positive number of seconds, got {self.interval!r}", "interval")
        if not (isinstance(self.expire_intervals, int) and self.expire_intervals >= 1):
            raise InvalidArgumentError("expire_intervals must be a whole number of at least 1, got "
                                       f"{self.expire_intervals!r}", "expire_intervals")
        if not (isinstance(self.window, int | float) and self.window >= 0):
            raise InvalidArgumentError(
                f"window must be a number of seconds >= 0, got {self.window!r}", "window")


class _DeadLetters(DeadLettering):
    """Dead-lettering with some queues' DLQ renamed (every instance's registry queue -> one DLQ)."""

    def __init__(self, connection: Any, rename: dict[str, str]) -> None:
        super().__init__(connection)
        self.rename = rename

    async def ensure(self, queue: str) -> str:
        return await super().ensure(self.rename.get(queue, queue))

    def forget(self, queue: str) -> None:
        super().forget(self.rename.get(queue, queue))


class Discovery:
    """Contract discovery of one Client; see the module docstring. ``client.discovery`` gives it."""

    def __init__(self, client: Any, options: DiscoveryOptions | None = None) -> None:
        self.client = client
        self.options = options or DiscoveryOptions()
        o = self.options
        self.registry = ContractRegistry(expire_after=o.interval * o.expire_intervals)
        self.announcer = Announcer(client.publish, o.interval)
        self.responder = Responder(self._answer, self._reply)
        self._auto: dict[str, EndpointContract] = {}
        self._manual: dict[str, EndpointContract] = {}
        self._subscriber: Subscriber | None = None
        self._admin: Any = None
        self._tasks: set[asyncio.Task[Any]] = set()
        self._sync_lock = asyncio.Lock()
        self.registry_queue = f"{REGISTRY_QUEUE_PREFIX}{client.service_name}.{uuid.uuid4().hex[:8]}"
        self.started = False

    def __repr__(self) -> str:
        return (f"<Discovery service={self.client.service_name!r} local={len(self.local())} "
                f"registry={len(self.registry)} {'running' if self.started else 'stopped'}>")

    @property
    def subscriptions(self) -> list[Any]:
        """The running subscriptions (registry queue, ``contract.discover``): their ``stats`` count
        what was received, applied, answered and dead-lettered."""
        return list(self._subscriber.subscriptions) if self._subscriber is not None else []

    # ------------------------------------------------------------------ local contracts
    def local(self) -> list[EndpointContract]:
        """This service's contracts (extracted from the handlers as they are now, and registered),
        sorted by endpoint id."""
        merged = {k: self._auto.get(k, ep) for k, ep in self._extracted().items()}
        merged.update(self._manual)
        return [merged[k] for k in sorted(merged)]

    def find_local(self, pattern: str = "", version: str = "") -> list[EndpointContract]:
        return [c for c in self.local() if c.matches(pattern, version)]

    def _extracted(self) -> dict[str, EndpointContract]:
        c, o = self.client, self.options
        registry = c.dispatcher.registry
        out: dict[str, EndpointContract] = {}
        for name in c.dispatcher.patterns():
            cls = registry.resolve(name)
            if cls is None or getattr(cls, "__mmate_generic__", False):
                continue  # a wildcard pattern, or a name without a class: nothing to describe
            ep = endpoint_for(cls, c.service_name, c.service_queue, registry, version=o.version,
                              timeout=o.timeout, max_retries=o.max_retries)
            out[ep.endpoint_id] = ep
        return out

    async def register_endpoint(self, contract: EndpointContract) -> EndpointContract:
        """Add (or replace) a contract of this service and announce it, as Go's ``RegisterEndpoint``:
        an empty service name becomes the client's, ``created_at`` is kept, ``updated_at`` is now,
        schemas of registered input/output types are added when missing. ContractError when the
        contract is not valid (see ``EndpointContract.is_valid``)."""
        c = replace(contract, service_name=contract.service_name or self.client.service_name,
                    updated_at=datetime.datetime.now(datetime.UTC))
        if not c.is_valid:
            raise ContractError(f"endpoint contract {c.endpoint_id!r} is not valid: endpoint_id, queue, "
                                "input_type, output_type and service_name must all be set")
        registry = self.client.dispatcher.registry
        if c.input_schema is None:
            c.input_schema = schema_of(registry.resolve(c.input_type))
        if c.output_schema is None:
            c.output_schema = schema_of(registry.resolve(c.output_type))
        self._manual[c.endpoint_id] = c
        if self.started and self.options.announce:
            await self.announcer.announce(REGISTERED, [c])
        return c

    async def unregister_endpoint(self, endpoint_id: str) -> bool:
        """Remove a registered contract and announce it ``unregistered``; False when unknown."""
        c = self._manual.pop(endpoint_id, None)
        if c is None:
            return False
        if self.started and self.options.announce and endpoint_id not in self._auto:
            await self.announcer.announce(UNREGISTERED, [c])
        return True

    async def _sync(self) -> None:
        """Bring the extracted contracts up to date with the client's handlers; announce each new
        one (``registered``, one per announcement as Go does) and each gone one (``unregistered``)."""
        async with self._sync_lock:
            now = self._extracted()
            added = [ep for k, ep in now.items() if k not in self._auto]
            removed = [ep for k, ep in self._auto.items() if k not in now]
            for ep in added:
                self._auto[ep.endpoint_id] = ep
            for ep in removed:
                del self._auto[ep.endpoint_id]
            if self.started and self.options.announce:
                for ep in added:
                    await self.announcer.announce(REGISTERED, [ep])
                await self.announcer.announce(UNREGISTERED, removed)

    def handlers_changed(self) -> None:
        """The client's handlers changed (the Client calls this): sync and announce soon."""
        if not self.started:
            return
        task = asyncio.get_running_loop().create_task(self._sync())
        self._tasks.add(task)
        task.add_done_callback(self._task_done)

    def _task_done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.warning("announcing changed endpoints failed: %r", task.exception())

    # ------------------------------------------------------------------ lifecycle
    async def start(self) -> None:
        """Declare and consume the registry queue and ``contract.discover``, announce the local
        contracts, start the periodic re-announcement. Needs a connected client."""
        if self.started:
            return
        c, o = self.client, self.options
        connection = c.connection
        if connection is None:
            raise MmateError("Discovery.start() needs a connected Client (async with Client(...))")
        self._admin = await connection.channel()
        dispatcher = Dispatcher(c.dispatcher.registry)
        dispatcher.add_handler(ContractAnnouncement, self.registry.apply)
        dispatcher.add_handler(ContractDiscoveryRequest, self.responder.handle)
        base = c.subscriber
        self._subscriber = Subscriber(
            connection, dispatcher, services=c, dead_letter_target=base.dead_letter_target,
            restart_delay=base.restart_delay,
            dead_letterer=_DeadLetters(connection, {self.registry_queue: ANNOUNCE_DLQ_OF}))
        self.started = True
        try:
            if o.listen:
                await self._declare_registry_queue()
                await self._subscriber.subscribe(self.registry_queue, prefetch=50,
                                                 redeclare=self._declare_registry_queue)
            if o.respond:
                try:
                    await self._declare_discover_queue()
                except PreconditionFailedError as exc:  # FIFO and non-FIFO services disagree on it
                    log.warning("not answering discovery requests: %s declared with other arguments (%s)",
                                DISCOVER_QUEUE, exc)
                else:
                    await self._subscriber.subscribe(DISCOVER_QUEUE, prefetch=10,
                                                     redeclare=self._declare_discover_queue)
            self._auto = {}
            await self._sync()  # announces every extracted endpoint
            if o.announce:
                await self.announcer.announce(REGISTERED, list(self._manual.values()))
                self.announcer.start(self.local, self.registry.expire)
        except BaseException:
            await self._shutdown(announce=False)
            raise

    async def _declare_registry_queue(self) -> None:
        ch = await self._admin_channel()
        # as Go declares it (a client made with declare_topology=False may be the first on the broker)
        await ch.exchange_declare(CONTRACTS_EXCHANGE, "topic", durable=True, auto_delete=False,
                                  internal=False)
        await ch.queue_declare(self.registry_queue, durable=False, exclusive=True, auto_delete=True)
        await ch.queue_bind(self.registry_queue, CONTRACTS_EXCHANGE, ANNOUNCE_KEY)

    async def _declare_discover_queue(self) -> None:
        args = {"x-single-active-consumer": True} if self.client.fifo else None
        await (await self._admin_channel()).queue_declare(DISCOVER_QUEUE, durable=True, arguments=args)

    async def _admin_channel(self) -> Any:
        if self._admin is None or not self._admin.is_open:
            await close_quietly(self._admin)
            self._admin = await self.client.connection.channel()
        return self._admin

    async def stop(self, timeout: float = 5.0) -> None:
        """Announce the local contracts ``unregistered``, stop consuming, delete the registry queue."""
        if self.started:
            await self._shutdown(announce=self.options.announce, timeout=timeout)

    async def _shutdown(self, announce: bool, timeout: float = 5.0) -> None:
        self.started = False
        await self.announcer.stop()
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
        if announce and not self.client.connection.is_closed:
            try:
                await self.announcer.announce(UNREGISTERED, self.local(), timeout=timeout)
            except MmateError as exc:
                log.warning("could not announce the contracts unregistered: %s", exc)
        if self._subscriber is not None:
            await self._subscriber.close(timeout)
            self._subscriber = None
        admin, self._admin = self._admin, None
        if admin is not None and admin.is_open and self.options.listen:
            try:
                await admin.queue_delete(self.registry_queue)
            except MmateError as exc:
                log.debug("registry queue delete failed: %s", exc)
        await close_quietly(admin)

    # ------------------------------------------------------------------ queries
    def _answer(self, pattern: str, version: str) -> list[EndpointContract]:
        return aggregate(self.find_local(pattern, version) + self.registry.find(pattern, version))

    async def _reply(self, response: ContractDiscoveryResponse, reply_to: str, correlation_id: str) -> None:
        await self.client.publish(response, exchange="", routing_key=reply_to, correlation_id=correlation_id)

    async def discover(self, pattern: str = "", version: str = "", *, remote: bool | None = None,
                       window: float | None = None, expect: int | None = None) -> list[EndpointContract]:
        """Contracts matching Go's rules for ``pattern`` (``*`` wildcards) and ``version`` (exact,
        ``1.x``, or a semver constraint such as ``^1.2``): from the local contracts and the registry;
        then, when those have nothing (Go's rule) or ``remote=True``, from a request over the broker
        that collects answers for ``window`` seconds (default: the options'), or until ``expect``
        answers came. ``remote=False`` never asks. Sorted by service and endpoint id."""
        found = aggregate(self.find_local(pattern, version) + self.registry.find(pattern, version))
        if remote or (remote is None and not found):
            asked = await ask(self.client.connection, self.client.publish, self.client.dispatcher.registry,
                              pattern, version, window=self.options.window if window is None else window,
                              expect=expect)
            # with what was announced meanwhile
            found = aggregate(found + asked + self.registry.find(pattern, version))
        return found


__all__ = ["ANNOUNCE_DLQ_OF", "Discovery", "DiscoveryOptions"]
