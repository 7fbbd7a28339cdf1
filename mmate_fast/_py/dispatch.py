"""Pure-Python twin of src_cy/dispatch.pyx: message type -> handlers, with a per-type result cache.

Contract: mmate_fast/_cy/dispatch.pyi. A lookup of a type seen before is one dict lookup returning
the cached tuple; any add/remove/clear drops the cache. The cache holds at most CACHE_MAX types
(type names come off the wire, so it must not grow without bound): when full it is emptied.
"""
from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

from mmate_fast.errors import InvalidPatternError, MmateError

#: Most types whose handler tuples are cached at once.
CACHE_MAX = 4096
#: the attribute of a settle-later handler that takes a context: its context-free entry
#: ``(message, delivery, queue)`` (see dispatch.pyi)
SETTLE_DIRECT = "__mmate_settle_direct__"

#: the subscriber's logger (a settle that could not be made is logged as the subscription logs it)
_log = logging.getLogger("mmate_fast.subscriber")


def _split(pattern: Any) -> tuple[int, str, str]:
    """Classify a pattern: (0, type, "") exact, (1, prefix, suffix) glob, (2, "", "") for "*"."""
    if not isinstance(pattern, str):
        raise TypeError(f"pattern must be str, not {type(pattern).__name__}")
    stars = pattern.count("*")
    if stars == 0:
        if not pattern:
            raise InvalidPatternError("empty pattern; use an exact type, '*', 'Prefix*' or '*Suffix'")
        return 0, pattern, ""
    if pattern == "*":
        return 2, "", ""
    if stars == 1:
        if pattern[-1] == "*":
            return 1, pattern[:-1], ""
        if pattern[0] == "*":
            return 1, "", pattern[1:]
    raise InvalidPatternError(
        f"invalid pattern {pattern!r}: use an exact type, '*', 'Prefix*' or '*Suffix' "
        "(one '*', only at the start or the end)")


class DispatchTable:
    """Handlers per wire type string, plus prefix/suffix globs and ``"*"`` (see dispatch.pyi)."""

    __slots__ = ("_cache", "_count", "_exact", "_globs", "_regs", "_star")

    def __init__(self) -> None:
        self._cache: dict[str, tuple[Any, ...]] = {}
        self._regs: dict[str, list[Any]] = {}  # pattern -> handlers; key order = registration order
        self._exact: dict[str, list[Any]] = {}  # type -> handlers in registration order
        self._globs: list[tuple[str, str, Any]] = []  # (prefix, suffix, handler) in registration order
        self._star: list[Any] = []
        self._count = 0

    def add(self, pattern: str, handler: Any) -> None:
        """Register ``handler`` for ``pattern``; the same (==) handler twice is kept once."""
        kind, prefix, suffix = _split(pattern)
        handlers = self._regs.get(pattern)
        if handlers is None:
            handlers = self._regs[pattern] = []
        elif handler in handlers:
            return
        handlers.append(handler)
        if kind == 0:
            self._exact.setdefault(prefix, []).append(handler)
        elif kind == 1:
            self._globs.append((prefix, suffix, handler))
        else:
            self._star.append(handler)
        self._count += 1
        self._cache = {}

    def remove(self, pattern: str, handler: Any) -> bool:
        """Unregister; returns False when it was not registered."""
        handlers = self._regs.get(pattern)
        if handlers is None or handler not in handlers:
            return False
        kind, prefix, suffix = _split(pattern)
        handlers.remove(handler)
        if not handlers:
            del self._regs[pattern]
        if kind == 0:
            exact = self._exact[prefix]
            exact.remove(handler)
            if not exact:
                del self._exact[prefix]
        elif kind == 1:
            globs = self._globs
            for i, (p, s, h) in enumerate(globs):
                if p == prefix and s == suffix and h == handler:
                    del globs[i]
                    break
        else:
            self._star.remove(handler)
        self._count -= 1
        self._cache = {}
        return True

    def lookup(self, type_name: str) -> tuple[Any, ...]:
        """Handlers for a type, () when none: exact, then globs, then "*" (each handler once)."""
        hit = self._cache.get(type_name)
        if hit is not None:
            return hit
        return self._resolve(type_name)

    def _resolve(self, type_name: str) -> tuple[Any, ...]:
        if not isinstance(type_name, str):
            raise TypeError(f"type_name must be str, not {type(type_name).__name__}")
        out = list(self._exact.get(type_name, ()))
        for prefix, suffix, h in self._globs:
            if type_name.startswith(prefix) and type_name.endswith(suffix) and h not in out:
                out.append(h)
        for h in self._star:
            if h not in out:
                out.append(h)
        result = tuple(out)
        cache = self._cache
        if len(cache) >= CACHE_MAX:
            cache.clear()
        cache[type_name] = result
        return result

    def patterns(self) -> list[str]:
        """Every registered pattern, in registration order."""
        return list(self._regs)

    def __len__(self) -> int:
        """Number of (pattern, handler) registrations."""
        return self._count

    def clear(self) -> None:
        """Forget every registration (and the cache)."""
        self._cache = {}
        self._regs = {}
        self._exact = {}
        self._globs = []
        self._star = []
        self._count = 0


class DeliveryStep:
    """The per-delivery step of one subscription (see dispatch.pyi): envelope, dispatch, payload
    decode, plain handlers and the ack, for the deliveries it handles; anything else goes, untouched,
    to ``owner.on_delivery`` (the general path)."""

    __slots__ = ("_by_name", "_decode_envelope", "_direct", "_general", "_hook", "_later", "_owner",
                 "_pipeline", "_plain", "_plan_for", "_plans", "_queue", "_stats", "_subscriber", "_table")

    def __init__(self, owner: Any, table: DispatchTable, by_name: dict[str, type],
                 decode_envelope: Callable[[Any], Any], plans: dict[type, Any],
                 plan_for: Callable[[type], Any]) -> None:
        if not isinstance(table, DispatchTable):
            raise TypeError(f"table must be a DispatchTable, not {type(table).__name__}")
        self._owner = owner
        self._general = owner.on_delivery
        self._stats = owner.stats
        self._pipeline = owner._pipeline
        self._subscriber = owner.subscriber
        self._queue = owner.queue
        self._table = table
        self._by_name = by_name
        self._decode_envelope = decode_envelope
        self._plans = plans
        self._plan_for = plan_for
        self._plain: dict[tuple[Any, ...], tuple[Any, ...]] = {}
        self._later: dict[tuple[Any, ...], tuple[tuple[Any, int], ...]] = {}
        self._hook: Any = None
        self._direct: Callable[[Any, Any, Any, Any], bool] | None = None

    def _direct_for(self, hook: Any) -> Callable[[Any, Any, Any, Any], bool] | None:
        """The result hook's context-free entry (``direct(result, msg, delivery, env)``, e.g. the
        Client's ReplyHook), remembered per hook object, or None."""
        if hook is not self._hook:
            self._hook = hook
            self._direct = getattr(hook, "direct", None)
        return self._direct

    def _plain_fns(self, handlers: tuple[Any, ...]) -> tuple[Any, ...]:
        """The handlers' functions when every one is plain, takes only the message and settles at
        once (not ``settles_later``), else ()."""
        out = self._plain.get(handlers)
        if out is None:
            fns = tuple(spec.fn for spec in handlers)
            if any(spec.is_async or spec.wants_context or getattr(spec.fn, "__mmate_settles_later__", False)
                   for spec in handlers):
                fns = ()
            if len(self._plain) >= CACHE_MAX:
                self._plain.clear()
            out = self._plain[handlers] = fns
        return out

    def _later_fns(self, handlers: tuple[Any, ...]) -> tuple[tuple[Any, int], ...]:
        """How the step runs a settle-later handler tuple itself: one (function, kind) per handler,
        kind 0 a plain message-only handler (its result is a reply), 1 a settle-later one called
        with the message, 2 a settle-later one's context-free entry called with (message, delivery,
        queue); () when it does not (an async handler, a plain one taking a context, a settle-later
        one taking a context without a context-free entry, or no settle-later handler at all)."""
        out = self._later.get(handlers)
        if out is not None:
            return out
        entries: list[tuple[Any, int]] = []
        later = False
        for spec in handlers:
            fn = spec.fn
            if spec.is_async:
                later = False
                break
            if getattr(fn, "__mmate_settles_later__", False):
                later = True
                if not spec.wants_context:
                    entries.append((fn, 1))
                    continue
                direct = getattr(fn, SETTLE_DIRECT, None)
                if direct is None:
                    later = False
                    break
                entries.append((direct, 2))
            elif spec.wants_context:
                later = False
                break
            else:
                entries.append((fn, 0))
        out = tuple(entries) if later else ()
        if len(self._later) >= CACHE_MAX:
            self._later.clear()
        self._later[handlers] = out
        return out

    def __call__(self, delivery: Any) -> None:
        """Handle one delivery as ``owner.on_delivery`` would (channel callback)."""
        return self._run(delivery, None)

    def channel_hook(self, ack: Callable[[int], Any]) -> Callable[[Any], None]:
        """The step for the frame reader of the channel it consumes on: acks with ``ack`` (that
        channel's basic_ack) instead of through ``owner.channel`` (see dispatch.pyi)."""
        if not callable(ack):
            raise TypeError(f"ack must be callable, not {type(ack).__name__}")

        def hooked(delivery: Any) -> None:
            return self._run(delivery, ack)

        return hooked

    def _run(self, delivery: Any, ack: Callable[[int], Any] | None) -> None:
        owner, pipeline, sub = self._owner, self._pipeline, self._subscriber
        if (delivery.undecodable is not None or pipeline.has_wire or pipeline.has_consume
                or sub.observer is not None or sub.tracer is not None or owner._stopping):
            return self._general(delivery)
        ch = owner.channel
        try:
            env = self._decode_envelope(delivery.body)
        except Exception:
            return self._general(delivery)  # it fails there again, and is dealt with
        type_name = env.type
        handlers = self._table.lookup(type_name)
        if not handlers:
            return self._general(delivery)
        fns = self._plain_fns(handlers)
        later: tuple[tuple[Any, int], ...] = ()
        if not fns:
            later = self._later_fns(handlers)
            # handlers the step does not run, or no free slot (the backlog keeps the order): the rest
            # of the general path, envelope decoded
            if not later or owner._in_flight >= owner.concurrency:
                self._stats.received += 1
                return owner._on_envelope(ch, delivery, env, handlers)
        cls = self._by_name.get(type_name)
        if cls is None:
            return self._general(delivery)
        plan = self._plans.get(cls) or self._plan_for(cls)
        try:  # a payload that is not a dict raises too: the general path deals with it
            msg = plan.decode_envelope(env)
        except Exception:
            return self._general(delivery)
        stats = self._stats
        stats.received += 1
        if later:
            return self._run_later(ch, delivery, env, msg, later, ack)
        try:
            for fn in fns:
                result = fn(msg)
                if result is not None:
                    direct = self._direct_for(sub.result_hook)
                    if direct is None or not direct(result, msg, delivery, env):
                        owner._on_result(result, msg, None, delivery, env)
        except Exception as exc:
            owner._spawn(owner._handler_failed(ch, delivery, env, msg, None, exc))
            return None
        if ack is not None:
            try:
                ack(delivery.delivery_tag)
                stats.acked += 1
                return None
            except Exception:  # that channel closed under the handler: as the general path settles
                pass
        if ch.basic_ack(delivery.delivery_tag) is False:  # dropped as stale by a recovering channel
            stats.stale_settles += 1
        else:
            stats.acked += 1
        return None

    def _run_later(self, ch: Any, delivery: Any, env: Any, msg: Any, entries: tuple[tuple[Any, int], ...],
                   ack: Callable[[int], Any] | None) -> None:
        """``Subscription._run_later`` for the tuples ``_later_fns`` takes: the handlers inline, then
        the ack now when no settle-later handler returned an awaitable, else a done-callback on it
        (``_Settle``) with the delivery in flight until then."""
        owner = self._owner
        later: list[Any] = []
        try:
            for fn, kind in entries:
                result = fn(msg, delivery, self._queue) if kind == 2 else fn(msg)
                if result is not None:
                    if kind:
                        later.append(result)
                    else:
                        direct = self._direct_for(self._subscriber.result_hook)
                        if direct is None or not direct(result, msg, delivery, env):
                            owner._on_result(result, msg, None, delivery, env)
        except Exception as exc:
            for awaitable in later:  # not awaited: a coroutine is closed (no "never awaited" warning)
                if asyncio.iscoroutine(awaitable):
                    awaitable.close()
            owner._spawn(owner._handler_failed(ch, delivery, env, msg, None, exc))
            return None
        if not later:  # nothing to wait for: settled now
            if ack is not None:
                try:
                    ack(delivery.delivery_tag)
                    self._stats.acked += 1
                    return None
                except Exception:  # that channel closed under the handler: as the general path settles
                    pass
            if owner._settle(ch.basic_ack, delivery.delivery_tag):
                self._stats.acked += 1
            return None
        fut = later[0] if len(later) == 1 else asyncio.gather(*later)
        if not isinstance(fut, asyncio.Future):  # a coroutine (or another awaitable): in a Task, kept
            fut = asyncio.ensure_future(fut)
            owner._tasks.add(fut)
            fut.add_done_callback(owner._tasks.discard)
        if owner._in_flight == 0:  # (with deliveries in flight the subscription is not idle already)
            owner._idle.clear()
        owner._in_flight += 1
        fut.add_done_callback(_Settle(self, ch, delivery, env, msg))
        return None


class _Settle:
    """``Subscription._settled`` of a delivery the step started (the awaitable's done-callback): ack,
    or fail it as a raising handler (a cancelled one is requeued); then a freed slot starts what waits
    for one (``owner._next``), or the subscription is idle again."""

    __slots__ = ("ch", "delivery", "env", "msg", "step")

    def __init__(self, step: DeliveryStep, ch: Any, delivery: Any, env: Any, msg: Any) -> None:
        self.step = step
        self.ch = ch
        self.delivery = delivery
        self.env = env
        self.msg = msg

    def __call__(self, fut: asyncio.Future[Any]) -> None:
        step = self.step
        owner = step._owner
        ch = self.ch
        delivery = self.delivery
        try:
            if fut.cancelled():
                owner._settle(ch.basic_nack, delivery.delivery_tag, False, True)
            else:
                exc = fut.exception()
                if exc is None:
                    try:
                        settled = ch.basic_ack(delivery.delivery_tag)
                    except MmateError as err:  # as Subscription._settle: logged, not counted
                        _log.warning("could not settle delivery on %r: %s", step._queue, err)
                    else:
                        if settled is False:  # dropped as stale by a recovering channel
                            step._stats.stale_settles += 1
                        else:
                            step._stats.acked += 1
                else:
                    owner._spawn(owner._handler_failed(ch, delivery, self.env, self.msg, None, exc))
        finally:
            owner._in_flight -= 1
            if owner._backlog or owner._in_flight == 0:
                owner._next()


__all__ = ["CACHE_MAX", "SETTLE_DIRECT", "DeliveryStep", "DispatchTable"]
