# cython: language_level=3, annotation_typing=False
"""Compiled dispatch table: message type -> handlers (twin: mmate_fast/_py/dispatch.py).

Contract: mmate_fast/_cy/dispatch.pyi. A lookup of a type seen before is one PyDict_GetItem
returning the cached tuple (borrowed, no allocation); any add/remove/clear drops the cache. The
cache holds at most CACHE_MAX types (type names come off the wire): when full it is emptied.
"""
from cpython.dict cimport PyDict_GetItem
from cpython.ref cimport PyObject

import asyncio
import logging
from typing import Any

from mmate_fast._cy.envelope cimport Envelope
from mmate_fast._cy.replystep cimport ReplyHook
from mmate_fast.errors import InvalidPatternError, MmateError

#: Most types whose handler tuples are cached at once.
CACHE_MAX = 4096
cdef Py_ssize_t _CACHE_MAX = CACHE_MAX
#: the attribute of a settle-later handler that takes a context: its context-free entry
#: ``(message, delivery, queue)`` (see dispatch.pyi)
SETTLE_DIRECT = "__mmate_settle_direct__"

_Future = asyncio.Future
_gather = asyncio.gather
_ensure_future = asyncio.ensure_future
_iscoroutine = asyncio.iscoroutine
#: the subscriber's logger (a settle that could not be made is logged as the subscription logs it)
_log = logging.getLogger("mmate_fast.subscriber")


cdef tuple _split(object pattern):
    """Classify a pattern: (0, type, "") exact, (1, prefix, suffix) glob, (2, "", "") for "*"."""
    if not isinstance(pattern, str):
        raise TypeError(f"pattern must be str, not {type(pattern).__name__}")
    cdef str p = <str>pattern
    cdef Py_ssize_t stars = p.count("*")
    if stars == 0:
        if not p:
            raise InvalidPatternError("empty pattern; use an exact type, '*', 'Prefix*' or '*Suffix'")
        return (0, p, "")
    if p == "*":
        return (2, "", "")
    if stars == 1:
        if p[len(p) - 1] == "*":
            return (1, p[:len(p) - 1], "")
        if p[0] == "*":
            return (1, "", p[1:])
    raise InvalidPatternError(
        f"invalid pattern {p!r}: use an exact type, '*', 'Prefix*' or '*Suffix' "
        "(one '*', only at the start or the end)")


cdef class DispatchTable:
    """Handlers per wire type string, plus prefix/suffix globs and ``"*"`` (see dispatch.pyi)."""

    cdef dict _cache
    cdef dict _regs  # pattern -> handlers; key order = registration order
    cdef dict _exact  # type -> handlers in registration order
    cdef list _globs  # (prefix, suffix, handler) in registration order
    cdef list _star
    cdef Py_ssize_t _count

    def __init__(self) -> None:
        self.clear()

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
        cdef list exact
        cdef Py_ssize_t i
        if kind == 0:
            exact = self._exact[prefix]
            exact.remove(handler)
            if not exact:
                del self._exact[prefix]
        elif kind == 1:
            for i in range(len(self._globs)):
                p, s, h = self._globs[i]
                if p == prefix and s == suffix and h == handler:
                    del self._globs[i]
                    break
        else:
            self._star.remove(handler)
        self._count -= 1
        self._cache = {}
        return True

    def lookup(self, type_name: str) -> tuple:
        """Handlers for a type, () when none: exact, then globs, then "*" (each handler once)."""
        cdef PyObject* hit = PyDict_GetItem(self._cache, type_name)
        if hit is not NULL:
            return <object>hit
        return self._resolve(type_name)

    cdef tuple _resolve(self, object type_name):
        if not isinstance(type_name, str):
            raise TypeError(f"type_name must be str, not {type(type_name).__name__}")
        cdef str name = <str>type_name
        cdef list out
        cdef str prefix, suffix
        exact = self._exact.get(name)
        out = [] if exact is None else list(<list>exact)
        for prefix, suffix, h in self._globs:
            if name.startswith(prefix) and name.endswith(suffix) and h not in out:
                out.append(h)
        for h in self._star:
            if h not in out:
                out.append(h)
        cdef tuple result = tuple(out)
        if len(self._cache) >= _CACHE_MAX:
            self._cache.clear()
        self._cache[name] = result
        return result

    def patterns(self) -> list:
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


cdef class DeliveryStep:
    """The compiled per-delivery step of one subscription (see dispatch.pyi): envelope, dispatch,
    payload reader, plain handlers and the ack in one C call, for the deliveries it handles;
    anything else goes, untouched, to ``owner.on_delivery`` (the general path)."""

    cdef object _owner, _general, _stats, _pipeline, _subscriber, _queue
    cdef DispatchTable _table
    cdef dict _by_name, _plans, _plain, _later
    cdef object _decode_envelope, _plan_for, _hook, _direct

    def __init__(self, owner, DispatchTable table, dict by_name, decode_envelope, dict plans, plan_for):
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
        self._plain = {}
        self._later = {}
        self._hook = None
        self._direct = None

    cdef object _direct_for(self, hook):
        """The result hook's context-free entry (``direct(result, msg, delivery, env)``, e.g. the
        Client's ReplyHook), remembered per hook object, or None."""
        if hook is not self._hook:
            self._hook = hook
            self._direct = getattr(hook, "direct", None)
        return self._direct

    cdef int _result(self, result, msg, delivery, env) except -1:
        """A plain handler's result to the subscriber's result hook: its context-free entry when
        it has one (the compiled ReplyHook's ``_send`` called in C: what its ``direct`` returns,
        without the Python call), else / when that declines ``owner._on_result``."""
        hook = self._subscriber.result_hook
        if type(hook) is ReplyHook:
            if (<ReplyHook>hook)._send(result, msg, env, delivery):
                return 0
        else:
            direct = self._direct_for(hook)
            if direct is not None and direct(result, msg, delivery, env):
                return 0
        self._owner._on_result(result, msg, None, delivery, env)
        return 0

    cdef tuple _plain_fns(self, tuple handlers):
        """The handlers' functions when every one is plain, takes only the message and settles at
        once (not ``settles_later``), else ()."""
        cdef PyObject* hit = PyDict_GetItem(self._plain, handlers)
        if hit is not NULL:
            return <tuple>hit
        cdef list fns = []
        for spec in handlers:
            if spec.is_async or spec.wants_context or getattr(spec.fn, "__mmate_settles_later__", False):
                fns = []
                break
            fns.append(spec.fn)
        cdef tuple out = tuple(fns)
        if len(self._plain) >= _CACHE_MAX:
            self._plain.clear()
        self._plain[handlers] = out
        return out

    cdef tuple _later_fns(self, tuple handlers):
        """How the step runs a settle-later handler tuple itself: one (function, kind) per handler,
        kind 0 a plain message-only handler (its result is a reply), 1 a settle-later one called
        with the message, 2 a settle-later one's context-free entry called with (message, delivery,
        queue); () when it does not (an async handler, a plain one taking a context, a settle-later
        one taking a context without a context-free entry, or no settle-later handler at all)."""
        cdef PyObject* hit = PyDict_GetItem(self._later, handlers)
        if hit is not NULL:
            return <tuple>hit
        cdef list entries = []
        cdef bint later = False
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
        cdef tuple out = tuple(entries) if later else ()
        if len(self._later) >= _CACHE_MAX:
            self._later.clear()
        self._later[handlers] = out
        return out

    def __call__(self, delivery):
        """Handle one delivery as ``owner.on_delivery`` would (channel callback)."""
        return self._run(delivery, None)

    def channel_hook(self, ack):
        """The step for the frame reader of the channel it consumes on: acks with ``ack`` (that
        channel's basic_ack) instead of through ``owner.channel`` (see dispatch.pyi)."""
        if not callable(ack):
            raise TypeError(f"ack must be callable, not {type(ack).__name__}")
        cdef _Hooked hooked = _Hooked.__new__(_Hooked)
        hooked.step = self
        hooked.ack = ack
        return hooked

    cdef object _run(self, delivery, ack):
        owner = self._owner
        pipeline = self._pipeline
        sub = self._subscriber
        if (delivery.undecodable is not None or pipeline.has_wire or pipeline.has_consume
                or sub.observer is not None or sub.tracer is not None or owner._stopping):
            return self._general(delivery)
        ch = owner.channel
        try:
            env = self._decode_envelope(delivery.body)
        except Exception:
            return self._general(delivery)  # it fails there again, and is dealt with
        type_name = (<Envelope>env).type if type(env) is Envelope else env.type
        cdef PyObject* hit = PyDict_GetItem(self._table._cache, type_name)
        cdef tuple handlers = <tuple>hit if hit is not NULL else self._table._resolve(type_name)
        if not handlers:
            return self._general(delivery)
        cdef tuple fns = self._plain_fns(handlers)
        cdef tuple later = ()
        if not fns:
            later = self._later_fns(handlers)
            # handlers the step does not run, or no free slot (the backlog keeps the order): the rest
            # of the general path, envelope decoded
            if not later or owner._in_flight >= owner.concurrency:
                self._stats.received += 1
                return owner._on_envelope(ch, delivery, env, handlers)
        hit = PyDict_GetItem(self._by_name, type_name)
        if hit is NULL:
            return self._general(delivery)
        cls = <object>hit
        hit = PyDict_GetItem(self._plans, cls)
        plan = <object>hit if hit is not NULL else self._plan_for(cls)
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
                    self._result(result, msg, delivery, env)
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


    cdef object _run_later(self, ch, delivery, env, msg, tuple entries, ack):
        """``Subscription._run_later`` for the tuples ``_later_fns`` takes: the handlers inline, then
        the ack now when no settle-later handler returned an awaitable, else a done-callback on it
        (``_Settle``) with the delivery in flight until then."""
        owner = self._owner
        cdef object first = None
        cdef list more = None
        cdef object result
        cdef Py_ssize_t kind
        try:
            for fn, kind in entries:
                if kind == 2:
                    result = fn(msg, delivery, self._queue)
                else:
                    result = fn(msg)
                if result is not None:
                    if kind:
                        if first is None:
                            first = result
                        elif more is None:
                            more = [first, result]
                        else:
                            more.append(result)
                    else:
                        self._result(result, msg, delivery, env)
        except Exception as exc:
            if more is not None:  # not awaited: a coroutine is closed (no "never awaited" warning)
                for awaitable in more:
                    if _iscoroutine(awaitable):
                        awaitable.close()
            elif first is not None and _iscoroutine(first):
                first.close()
            owner._spawn(owner._handler_failed(ch, delivery, env, msg, None, exc))
            return None
        if first is None:  # nothing to wait for: settled now
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
        fut = first if more is None else _gather(*more)
        if not isinstance(fut, _Future):  # a coroutine (or another awaitable): in a Task, kept
            fut = _ensure_future(fut)
            tasks = owner._tasks
            tasks.add(fut)
            fut.add_done_callback(tasks.discard)
        if owner._in_flight == 0:  # (with deliveries in flight the subscription is not idle already)
            owner._idle.clear()
        owner._in_flight += 1
        cdef _Settle settle = _Settle.__new__(_Settle)
        settle.step = self
        settle.ch = ch
        settle.delivery = delivery
        settle.env = env
        settle.msg = msg
        fut.add_done_callback(settle)
        return None


cdef class _Settle:
    """``Subscription._settled`` of a delivery the step started (the awaitable's done-callback): ack,
    or fail it as a raising handler (a cancelled one is requeued); then a freed slot starts what waits
    for one (``owner._next``), or the subscription is idle again."""

    cdef DeliveryStep step
    cdef object ch, delivery, env, msg

    def __call__(self, fut):
        owner = self.step._owner
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
                        _log.warning("could not settle delivery on %r: %s", self.step._queue, err)
                    else:
                        if settled is False:  # dropped as stale by a recovering channel
                            self.step._stats.stale_settles += 1
                        else:
                            self.step._stats.acked += 1
                else:
                    owner._spawn(owner._handler_failed(ch, delivery, self.env, self.msg, None, exc))
        finally:
            owner._in_flight -= 1
            if owner._backlog or owner._in_flight == 0:
                owner._next()


cdef class _Hooked:
    """DeliveryStep.channel_hook's callable: the step, acking on the channel the delivery came on."""

    cdef DeliveryStep step
    cdef object ack

    def __call__(self, delivery):
        return self.step._run(delivery, self.ack)


__all__ = ["CACHE_MAX", "SETTLE_DIRECT", "DeliveryStep", "DispatchTable"]
