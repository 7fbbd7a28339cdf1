# cython: language_level=3, annotation_typing=False
"""Compiled per-message steps of request/reply (twin: mmate_fast/_py/replystep.py; contract:
mmate_fast/_cy/replystep.pyi).

``ReplyStep``: the bridge's reply consumer. A plain typed reply to a waiting request goes frame ->
envelope -> correlation lookup -> typed reply -> future result in one C call (no Python frame but
the envelope decoder's and the payload reader's own); everything else goes, with nothing done yet,
to the bridge's ``_on_reply``.
``ReplyHook``: the Client's handler-result hook on the responder side. A typed reply to a request
with its reply address on the message is written by the reply publisher's plan into its channel's
sink with no Python frame in between (``reply_nowait`` when that path declines); everything else
goes to ``Client._on_handler_result``.
"""
from cpython.dict cimport PyDict_GetItem
from cpython.ref cimport PyObject

from mmate_fast._cy.envelope cimport Envelope

from mmate_fast.errors import RemoteError

#: classes whose "needs error_of" verdict is cached at most at once (class objects, not wire names)
cdef Py_ssize_t _CACHE_MAX = 1024


cdef class ReplyStep:
    """The bridge's reply callback (see replystep.pyi)."""

    cdef object _general, _stats, _publisher
    cdef dict _pending, _by_name, _plans, _judge
    cdef object _decode_envelope, _plan_for, _error_of
    cdef tuple _judged

    def __init__(self, owner, dict pending, dict by_name, decode_envelope, dict plans, plan_for,
                 error_of, tuple judged):
        self._general = owner._on_reply
        self._stats = owner.stats
        self._publisher = owner.publisher
        self._pending = pending
        self._by_name = by_name
        self._decode_envelope = decode_envelope
        self._plans = plans
        self._plan_for = plan_for
        self._error_of = error_of
        self._judged = judged
        self._judge = {}

    def __call__(self, delivery):
        """Handle one reply exactly as ``owner._on_reply`` would (a channel callback)."""
        return self._run(delivery)

    def no_ack_hook(self, settle):
        """The step for the frame reader of the channel it consumes on (no-ack consumer): each
        delivery's tag is first passed to ``settle(tag, False)``, as the channel does for a no-ack
        consumer's deliveries (see replystep.pyi)."""
        if not callable(settle):
            raise TypeError(f"settle must be callable, not {type(settle).__name__}")
        cdef _Hooked hooked = _Hooked.__new__(_Hooked)
        hooked.step = self
        hooked.settle = settle
        return hooked

    cdef bint _needs_judging(self, object cls):
        """Whether a reply of class ``cls`` must go through ``error_of`` even with ``success`` not
        False (the ``judged`` classes and their subclasses: ErrorReply, GenericMessage)."""
        cdef PyObject* hit = PyDict_GetItem(self._judge, cls)
        if hit is not NULL:
            return <object>hit is True
        verdict = issubclass(cls, self._judged)
        if len(self._judge) >= _CACHE_MAX:
            self._judge.clear()
        self._judge[cls] = verdict
        return verdict

    cdef object _run(self, delivery):
        if delivery.undecodable is not None or self._publisher.pipeline.has_wire:
            return self._general(delivery)
        try:
            env = self._decode_envelope(delivery.body)
        except Exception:
            return self._general(delivery)  # it fails there again, and is counted
        cdef bint plain = type(env) is Envelope  # the compiled one: its fields read from the struct
        correlation_id = (<Envelope>env).correlation_id if plain else env.correlation_id
        if not correlation_id:
            return self._general(delivery)  # the fallbacks (AMQP property, headers) live there
        cdef PyObject* hit = PyDict_GetItem(self._pending, correlation_id)
        if hit is NULL:
            return self._general(delivery)  # late or unknown: counted and logged there
        fut = <object>hit
        if fut.done():
            return self._general(delivery)
        type_name = (<Envelope>env).type if plain else env.type
        hit = PyDict_GetItem(self._by_name, type_name)
        if hit is NULL:
            return self._general(delivery)  # a GenericMessage, or a type to convert / refuse
        cls = <object>hit
        hit = PyDict_GetItem(self._plans, cls)
        plan = <object>hit if hit is not NULL else self._plan_for(cls)
        try:  # read from the payload's bytes when the envelope kept them; not a dict: raises
            reply = plan.decode_envelope(env)
        except Exception:
            return self._general(delivery)  # converted, or raises there again: the request fails
        self._pending.pop(correlation_id, None)
        stats = self._stats
        stats.replied += 1
        if not self._needs_judging(type(reply)) and getattr(reply, "success", True) is not False:
            fut.set_result(reply)  # error_of's answer for these: None
            return None
        failure = self._error_of(reply, env.payload)
        if failure is None:
            fut.set_result(reply)
        else:
            stats.errors += 1
            fut.set_exception(RemoteError(failure[0], failure[1], reply))
        return None


cdef class _Hooked:
    """ReplyStep.no_ack_hook's callable: settles the delivery's tag, then the step."""

    cdef ReplyStep step
    cdef object settle

    def __call__(self, delivery):
        self.settle(delivery.delivery_tag, False)
        return self.step._run(delivery)


cdef class ReplyHook:
    """The Client's handler-result hook (see replystep.pyi); its C fields and ``_send`` are declared
    in mmate_fast/_cy/replystep.pxd (the compiled consume step calls ``_send`` directly)."""

    def __init__(self, client, general, dict plans, reply_kind, not_sent, error):
        self._client = client
        self._general = general
        self._plans = plans
        self._reply_kind = reply_kind
        self._not_sent = not_sent
        self._error = error
        self._verdicts = {}
        self._adopt(None)

    def __call__(self, result, msg, ctx):
        """``Client._on_handler_result(result, msg, ctx)``, the same outcome."""
        cdef int done = self._send(result, msg, ctx.envelope, ctx.delivery)
        if done == 0:
            return self._general(result, msg, ctx)
        return None

    def direct(self, result, msg, delivery, env):
        """The hook without a MessageContext (for a compiled consume step): True when the result
        was dealt with (sent, or not a reply), False when the caller must build the context and
        call the hook itself."""
        return self._send(result, msg, env, delivery) != 0

    cdef object _verdict(self, cls):
        """What a result of ``cls`` is, from its ContractPlan: True a reply (sent here), False not
        a reply (nothing to send), None generic (``kind_of`` decides: the general path) or no plan
        yet. Kept per class once the plan exists (a plan's kind and genericity are its class's)."""
        cdef PyObject* hit = PyDict_GetItem(self._verdicts, cls)
        if hit is not NULL:
            return <object>hit
        hit = PyDict_GetItem(self._plans, cls)
        if hit is NULL:
            return None
        plan = <object>hit
        verdict = None if plan.is_generic else plan.kind is self._reply_kind
        if len(self._verdicts) >= _CACHE_MAX:
            self._verdicts.clear()
        self._verdicts[cls] = verdict
        return verdict

    cdef int _send(self, result, msg, env, delivery) except -1:
        """1: dealt with; 0: the general path must decide."""
        cls = type(result)
        verdict = self._verdict(cls)
        if verdict is None:
            return 0
        if verdict is False:
            return 1  # not a reply: nothing to send (the general path returns None too)
        reply_to = getattr(msg, "reply_to", None)
        if type(reply_to) is not str or not reply_to:
            return 0  # the context's reply address, or the warning
        publisher = self._client._reply_publisher
        if publisher is None:
            return 0
        if publisher is not self._publisher:  # a new reply publisher (reconnect): its own plans
            self._adopt(publisher)
        if self._pipeline.has_publish:
            return 0
        correlation_id = (<Envelope>env).correlation_id if type(env) is Envelope else env.correlation_id
        if not correlation_id:
            return 0  # the context's fallbacks
        persistent = getattr(delivery.properties, "delivery_mode", None) != 1
        try:
            if self._write(publisher, cls, result, reply_to, correlation_id, persistent):
                return 1
            publisher.reply_nowait(result, reply_to, correlation_id, persistent)
        except self._error as exc:
            self._not_sent(result, reply_to, exc)
        return 1

    cdef int _adopt(self, publisher) except -1:
        """Start on ``publisher`` (None: none yet): its pipeline and confirm mode (both set once, in
        ``Publisher.__init__``) read once, no reply plans of its own yet."""
        self._publisher = publisher
        self._pipeline = None if publisher is None else publisher.pipeline
        self._confirms = publisher is not None and bool(publisher.confirms)
        self._durable = {}
        self._transient = {}
        return 0

    cdef bint _write(self, publisher, cls, result, str reply_to, correlation_id, bint persistent) except -1:
        """``reply_nowait``'s one-call path without its frame: the class's reply plan (asked of the
        publisher once per class and ``persistent``) written into the publisher's sink. False when
        it wrote nothing (no plan, confirm mode, no sink, the plan declined): ``reply_nowait``
        then."""
        if self._confirms:
            return False
        cdef dict plans = self._durable if persistent else self._transient
        cdef PyObject* hit = PyDict_GetItem(plans, cls)
        if hit is NULL:
            plan = publisher.reply_plan(result, persistent)
            if plan is None:
                plan = False
            if len(plans) >= _CACHE_MAX:
                plans.clear()
            plans[cls] = plan
        else:
            plan = <object>hit
        if plan is False:
            return False
        sink = publisher._sink
        if sink is None or not sink.open:
            sink = publisher._refresh_sink()
            if sink is None:
                return False
        if sink.write(plan, result, correlation_id, None, reply_to) is None:
            return False
        publisher.published += 1
        return True


__all__ = ["ReplyHook", "ReplyStep"]
