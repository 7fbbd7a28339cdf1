# cython: language_level=3
"""The compiled ReplyHook's fields and its C entry, for modules that cimport it (the consume step,
dispatch.DeliveryStep, calls ``_send`` instead of the Python-level ``direct``). The class itself is
defined in src_cy/replystep.pyx (ReplyStep is not declared here: nothing outside uses it)."""


cdef class ReplyHook:
    cdef object _client, _general, _plans, _reply_kind, _not_sent, _error
    cdef object _publisher  # the reply publisher whose plans _durable / _transient hold
    cdef object _pipeline  # _publisher.pipeline (read once per publisher)
    cdef bint _confirms  # _publisher.confirms (read once per publisher)
    cdef dict _durable, _transient  # reply class -> its plan in that publisher (False: none)
    cdef dict _verdicts  # reply class -> True (a reply), False (not a reply), None (generic)
    cdef object _verdict(self, cls)
    cdef int _send(self, result, msg, env, delivery) except -1
    cdef int _adopt(self, publisher) except -1
    cdef bint _write(self, publisher, cls, result, str reply_to, correlation_id, bint persistent) except -1
