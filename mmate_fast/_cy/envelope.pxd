# cython: language_level=3
"""The compiled Envelope's fields, for modules that cimport it (payload_reader reads them as struct
fields instead of attribute lookups). The class itself is defined in envelope.pyx."""


cdef class Envelope:
    cdef public object id, type, timestamp, correlation_id, reply_to
    cdef object _headers, _payload
    cdef bytes _raw_headers  # a checked JSON object not decoded yet
    cdef bytes _raw_payload  # a JSON object in the strict plain subset, not decoded yet
    cdef tuple _values(self)
