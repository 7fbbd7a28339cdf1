"""Automatic recovery: a connection that reconnects by itself and restores what was built on it.

When the connection drops (network cut, broker restart, ``rabbitmqctl close_connection``, missed
heartbeats), :class:`RobustConnection` reconnects with exponential backoff and jitter, then every
:class:`RobustChannel` re-opens (with publisher confirms again if it had them), re-declares the
exchanges, queues and bindings declared through it (server-named queues get their new name mapped),
restores its QoS and re-starts its consumers with the same tags and callbacks. Publishes that were
not confirmed when the link died are re-sent (their futures stay pending across the reconnect), so
nothing is silently dropped; publishes made while disconnected either wait (bounded: buffered and
sent after recovery; ``await publish()`` waits up to ``wait_timeout``) or fail fast with
ConnectionClosedError, by policy. Delivery tags of a new connection are shifted (generation << 40)
so that a late ack of a pre-reconnect delivery is dropped instead of acking a different message;
the broker redelivers those (at-least-once).

Several nodes (a cluster: ``amqp://u:p@h1,h2,h3/`` or a list of URLs): the first connect takes the
first node that answers (in a random order with ``shuffle``); after a loss every attempt tries the
nodes round the list starting with the one after the lost node, so a client fails over to the next
node and comes back to the others in turn; the restore above happens on whichever node answers.
``params`` is the node connected to (or last connected to); ``nodes`` all of them.

Recovery is observable: ``on_disconnected``/``on_reconnecting``/``on_reconnected``/``on_failed``
callbacks, log lines on ``mmate_fast.amqp.recovery`` and :class:`RecoveryStats`.
A channel-level error (404, 406, ...: the broker closed one channel, the connection lives) fails
only the refused call: the channel reopens itself on the same connection (see ``_robust_channel``).
"""
from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

from mmate_fast import _backoff, errors
from mmate_fast.amqp._robust_channel import RobustChannel
from mmate_fast.amqp.connection import Connection, apply_overrides, connect_any
from mmate_fast.amqp.url import Addresses, ConnectionParameters, connect_order, parse_urls, safe_urls

log = logging.getLogger("mmate_fast.amqp.recovery")


@dataclass
class RecoveryPolicy:
    """How to reconnect and what publishers see meanwhile."""

    initial_delay: float = _backoff.RECOVERY.initial
    max_delay: float = _backoff.RECOVERY.maximum
    multiplier: float = _backoff.RECOVERY.multiplier
    #: +- fraction of random jitter on every delay
    jitter: float = _backoff.RECOVERY.jitter
    #: None = retry forever
    max_attempts: int | None = None
    #: "wait": buffer publishes / block ``await publish()`` until reconnected (bounded);
    #: "fail": raise ConnectionClosedError at once while disconnected. While a channel reopens
    #: after a channel error (the connection is up) publishes are buffered either way.
    on_disconnect: Literal["wait", "fail"] = "wait"
    #: how long ``await publish()`` and topology calls wait for the connection (or a reopening
    #: channel) to come back
    wait_timeout: float = 30.0
    #: how many publishes may be buffered while disconnected (then ConnectionBlockedError)
    max_buffered: int = 100_000
    #: publishes a recovery sends (unconfirmed ones re-sent, buffered ones) that the broker nacks are
    #: sent again until ``wait_timeout`` (a quorum queue nacks them while it elects a new leader)
    resend_nacked: bool = True

    def delay(self, attempt: int) -> float:
        """Seconds before reconnect (or reopen, restart) attempt ``attempt``: exponential, capped,
        with jitter (:func:`mmate_fast._backoff.exponential`)."""
        return _backoff.exponential(attempt, self.initial_delay, self.max_delay, self.multiplier, self.jitter)


@dataclass
class RecoveryStats:
    """Counters of one RobustConnection."""

    disconnects: int = 0
    reconnects: int = 0
    #: reconnects that landed on another node than the one lost
    failovers: int = 0
    failed_attempts: int = 0
    republished: int = 0
    buffered_sent: int = 0
    stale_acks_dropped: int = 0
    #: channels reopened on a live connection after the broker closed them (404, 406, ...)
    channel_reopens: int = 0
    #: channels replaced after the broker nacked a publish on them (see ``_robust_channel``)
    nack_replacements: int = 0
    #: recovery publishes the broker nacked and that were sent again (``resend_nacked``)
    nacked_resent: int = 0
    #: consumers dropped because they could not be restored (queue gone, ...); on_cancel was called
    consumers_dropped: int = 0
    #: recorded exchanges, queues or bindings a reconnect could not restore (404/406), dropped
    topology_dropped: int = 0
    last_error: str = ""
    history: list[str] = field(default_factory=list)


RecoveryCallback = Callable[..., Any]


class RobustConnection:
    """A Connection facade that survives connection loss. Create with :func:`connect_robust`."""

    def __init__(self, params: ConnectionParameters | list[ConnectionParameters], policy: RecoveryPolicy,
                 loop: asyncio.AbstractEventLoop, *, shuffle: bool | None = None) -> None:
        #: every node this connection may use (one for a single-node URL)
        self.nodes: list[ConnectionParameters] = params if isinstance(params, list) else [params]
        #: the node connected to (the last one while reconnecting)
        self.params = self.nodes[0]
        self._node = 0
        self._shuffle = shuffle
        self.policy = policy
        self.loop = loop
        self.stats = RecoveryStats()
        self._conn: Connection | None = None
        self._channels: list[RobustChannel] = []
        self._connected = asyncio.Event()
        self._recovering: asyncio.Task[None] | None = None
        self._closed_exc: BaseException | None = None
        self._close_waiter: asyncio.Future[None] = loop.create_future()
        self._user_closing = False
        self.on_disconnected: list[RecoveryCallback] = []
        self.on_reconnecting: list[RecoveryCallback] = []
        self.on_reconnected: list[RecoveryCallback] = []
        self.on_failed: list[RecoveryCallback] = []

    # ------------------------------------------------------------------ state
    @property
    def is_closed(self) -> bool:
        return self._closed_exc is not None

    @property
    def is_connected(self) -> bool:
        return self._connected.is_set() and self._conn is not None and not self._conn.is_closed

    @property
    def closed(self) -> asyncio.Future[None]:
        """Resolves when closed by the user or when recovery gave up (not on a mere disconnect)."""
        return self._close_waiter

    @property
    def connection(self) -> Connection | None:
        """The current underlying connection (None while disconnected)."""
        return self._conn

    def __repr__(self) -> str:
        state = "closed" if self.is_closed else ("connected" if self.is_connected else "reconnecting")
        nodes = f" of {len(self.nodes)} nodes" if len(self.nodes) > 1 else ""
        return (f"<RobustConnection {self.params.safe_url()}{nodes} {state} "
                f"reconnects={self.stats.reconnects}>")

    def __getattr__(self, name: str) -> Any:
        # frame_max, heartbeat, server_properties, blocked, ... of the current connection
        if name.startswith("_") or self.__dict__.get("_conn") is None:
            raise AttributeError(name)
        return getattr(self.__dict__["_conn"], name)

    async def wait_connected(self, timeout: float | None = None) -> Connection:
        """The live connection, waiting (bounded) while a reconnect is in progress."""
        if self._closed_exc is not None:
            raise self._closed_exc
        if not self.is_connected:
            if self.policy.on_disconnect == "fail":
                raise errors.ConnectionClosedError(
                    f"disconnected from {self.params.safe_url()}; reconnecting to {self.safe_url()} "
                    "(on_disconnect='fail')")
            wait = self.policy.wait_timeout if timeout is None else timeout
            try:
                async with asyncio.timeout(wait):
                    while not self.is_connected:
                        if self._closed_exc is not None:
                            raise self._closed_exc
                        await self._connected.wait()
            except TimeoutError:
                raise errors.OperationTimeout(
                    f"still reconnecting to {self.safe_url()} after {wait} s") from None
        assert self._conn is not None
        return self._conn

    # ------------------------------------------------------------------ lifecycle
    def safe_url(self) -> str:
        """Every node, without the password (``amqp://guest@h1:5672,h2:5673/``), for messages."""
        return safe_urls(self.nodes)

    async def _start(self, timeout: float | None) -> None:
        conn, index = await connect_any(self.nodes, connect_order(self.nodes, 0, self._shuffle), timeout,
                                        self.loop)
        self._attach(conn, index)

    def _attach(self, conn: Connection, index: int) -> None:
        self._node = index
        self.params = self.nodes[index]
        self._conn = conn
        conn.on_close.append(self._on_lost)
        self._connected.set()

    def _on_lost(self, conn: Connection, exc: BaseException | None) -> None:
        if conn is not self._conn or self._user_closing or self._closed_exc is not None:
            return
        self._connected.clear()
        for ch in self._channels:
            ch._link_lost()
        self.stats.disconnects += 1
        self.stats.last_error = str(exc)
        self._note(f"disconnected: {exc}")
        log.warning("connection to %s lost (%s); recovering", self.params.safe_url(), exc)
        self._fire(self.on_disconnected, self, exc)
        if self._recovering is None or self._recovering.done():
            self._recovering = self.loop.create_task(self._recover())

    async def _recover(self) -> None:
        attempt = 0
        lost = self._node
        while self._closed_exc is None:
            attempt += 1
            if self.policy.max_attempts is not None and attempt > self.policy.max_attempts:
                self._give_up(errors.ConnectionClosedError(
                    f"could not reconnect to {self.safe_url()} after {attempt - 1} attempts: "
                    f"{self.stats.last_error}"))
                return
            delay = self.policy.delay(attempt)
            self._fire(self.on_reconnecting, self, attempt, delay)
            log.info("reconnect attempt %d to %s in %.2f s", attempt, self.safe_url(), delay)
            await asyncio.sleep(delay)
            if self._closed_exc is not None:
                return
            conn: Connection | None = None
            # the node after the one lost (or after the one whose restore failed) first, then round
            order = connect_order(self.nodes, (self._node + 1) % len(self.nodes), self._shuffle)
            try:
                conn, index = await connect_any(self.nodes, order, None, self.loop)
                self._node, self.params = index, self.nodes[index]
                self._conn = conn
                conn.on_close.append(self._on_lost)
                for ch in list(self._channels):
                    await ch._restore(conn)
            except Exception as exc:
                self.stats.failed_attempts += 1
                self.stats.last_error = str(exc)
                self._note(f"attempt {attempt} failed: {exc}")
                log.warning("reconnect attempt %d failed: %s", attempt, exc)
                if conn is not None and not conn.is_closed:
                    # a half-restored connection: drop it quietly (it is not a new disconnect)
                    if self._on_lost in conn.on_close:
                        conn.on_close.remove(self._on_lost)
                    with contextlib.suppress(Exception):
                        await conn.close(timeout=2)
                continue
            self.stats.reconnects += 1
            if self._node != lost:
                self.stats.failovers += 1
            self._note(f"reconnected to {self.params.host}:{self.params.port} after {attempt} attempt(s)")
            log.warning("reconnected to %s after %d attempt(s)", self.params.safe_url(), attempt)
            self._connected.set()
            for ch in list(self._channels):
                ch._reconnected()
            self._fire(self.on_reconnected, self)
            return

    def _give_up(self, exc: BaseException) -> None:
        log.error("giving up recovery: %s", exc)
        self._note(f"gave up: {exc}")
        self._closed_exc = exc
        for ch in list(self._channels):
            ch._fail_everything(exc)
        self._connected.set()  # wake waiters; they see _closed_exc
        if not self._close_waiter.done():
            self._close_waiter.set_result(None)
        self._fire(self.on_failed, self, exc)

    def _note(self, text: str) -> None:
        self.stats.history.append(text)
        del self.stats.history[:-50]

    @staticmethod
    def _fire(callbacks: list[RecoveryCallback], *args: Any) -> None:
        for cb in list(callbacks):
            try:
                cb(*args)
            except Exception:
                log.exception("recovery callback failed")

    async def channel(self, *, publisher_confirms: bool = False,
                      timeout: float | None = None) -> RobustChannel:
        conn = await self.wait_connected(timeout)
        ch = RobustChannel(self, publisher_confirms)
        await ch._restore(conn)
        self._channels.append(ch)
        ch._go_live()
        return ch

    async def drain(self, timeout: float | None = None) -> None:
        conn = await self.wait_connected(timeout)
        await conn.drain(timeout)

    async def close(self, timeout: float | None = None) -> None:
        """Close for good: stop recovering, close the connection, fail what is still pending."""
        if self._closed_exc is not None:
            return
        self._user_closing = True
        exc = errors.ConnectionClosedError("connection closed by client", 200, "Normal shutdown")
        self._closed_exc = exc
        if self._recovering is not None and not self._recovering.done():
            self._recovering.cancel()
        if self._conn is not None and not self._conn.is_closed:
            await self._conn.close(timeout)
        for ch in list(self._channels):
            ch._fail_everything(exc)
        self._connected.set()
        if not self._close_waiter.done():
            self._close_waiter.set_result(None)

    async def __aenter__(self) -> RobustConnection:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    def _forget(self, ch: RobustChannel) -> None:
        if ch in self._channels:
            self._channels.remove(ch)


async def connect_robust(url: Addresses, *, policy: RecoveryPolicy | None = None,
                         timeout: float | None = None, loop: asyncio.AbstractEventLoop | None = None,
                         shuffle: bool | None = None, **overrides: Any) -> RobustConnection:
    """Connect (the first connect fails as :func:`connect` does) and keep the connection alive.
    ``url``: one node, or several (``amqp://u:p@h1,h2,h3/``, a list of URLs) to fail over between;
    ``shuffle``: try them in a random order (default: the URL's ``shuffle`` option)."""
    nodes = parse_urls(url)
    for params in nodes:
        apply_overrides(params, overrides, "connect_robust")
    robust = RobustConnection(nodes, policy or RecoveryPolicy(), loop or asyncio.get_running_loop(),
                              shuffle=shuffle)
    await robust._start(timeout)
    return robust
