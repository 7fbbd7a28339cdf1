# cython: language_level=3, annotation_typing=False
"""Compiled per-delivery step of the request/reply bridge's reply consumer (twin:
mmate_fast/_py/replystep.py; contract: mmate_fast/_cy/replystep.pyi).

A plain typed reply to a waiting request goes frame -> envelope -> correlation lookup -> typed
reply -> future result in one C call (no Python frame but the envelope decoder's and the payload
reader's own); everything else goes, with nothing done yet, to the bridge's ``_on_reply``.
"""
from cpython.dict cimport PyDict_GetItem
from cpython.ref cimport PyObject

from mmate_fast.errors import RemoteError

#: classes whose "needs error_of" verdict is cached at most at once (class objects, not wire names)
cdef Py_ssize_t _CACHE_MAX = 1024


cdef class ReplyStep:
    """The bridge's reply callback (see replystep.pyi)."""

    cdef object _owner, _general, _stats, _publisher
    cdef dict _pending, _by_name, _plans, _judge
    cdef object _decode_envelope, _plan_for, _error_of
    cdef tuple _judged

    def __init__(self, owner, dict pending, dict by_name, decode_envelope, dict plans, plan_for,
                 error_of, tuple judged):
        self._owner = owner
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
        correlation_id = env.correlation_id
        if not correlation_id:
            return self._general(delivery)  # the fallbacks (AMQP property, headers) live there
        cdef PyObject* hit = PyDict_GetItem(self._pending, correlation_id)
        if hit is NULL:
            return self._general(delivery)  # late or unknown: counted and logged there
        fut = <object>hit
        if fut.done():
            return self._general(delivery)
        type_name = env.type
        hit = PyDict_GetItem(self._by_name, type_name)
        payload = env.payload
        if hit is NULL or type(payload) is not dict:
            return self._general(delivery)  # a GenericMessage, or a payload to convert / refuse
        cls = <object>hit
        hit = PyDict_GetItem(self._plans, cls)
        plan = <object>hit if hit is not NULL else self._plan_for(cls)
        try:
            reply = plan.decode(payload, env.id, type_name, env.timestamp, correlation_id)
        except Exception:
            return self._general(delivery)  # raises there again: the request fails with it
        self._pending.pop(correlation_id, None)
        stats = self._stats
        stats.replied += 1
        if not self._needs_judging(type(reply)) and getattr(reply, "success", True) is not False:
            fut.set_result(reply)  # error_of's answer for these: None
            return None
        failure = self._error_of(reply, payload)
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


__all__ = ["ReplyStep"]
