# cython: language_level=3
"""A small cache of the short ASCII strings that come again and again off the wire (consumer tags,
routing keys, content and message types, envelope timestamps of the same second): decoding one that
is cached returns the same str object (no allocation, and dict lookups by identity). Cimported by
frames.pyx and envelope.pyx (inline: each module keeps its own 64 slots)."""
from cpython.ref cimport PyObject, Py_INCREF, Py_XDECREF
from cpython.unicode cimport PyUnicode_DecodeUTF8
from libc.string cimport memcmp


cdef extern from *:
    """
    static PyObject* mmate_strcache[64];
    #define MMATE_STR_IS_ASCII(o) PyUnicode_IS_COMPACT_ASCII(o)
    #define MMATE_STR_LEN(o) PyUnicode_GET_LENGTH(o)
    #define MMATE_STR_DATA(o) ((const char*)PyUnicode_DATA(o))
    """
    PyObject* mmate_strcache[64]
    bint MMATE_STR_IS_ASCII(PyObject* o)
    Py_ssize_t MMATE_STR_LEN(PyObject* o)
    const char* MMATE_STR_DATA(PyObject* o)


cdef inline object _utf8_cached(const char* s, Py_ssize_t n):
    """``PyUnicode_DecodeUTF8(s, n, NULL)`` (raises UnicodeDecodeError the same), from the cache
    when the same ASCII text was decoded last in its slot; only strings of 1..64 bytes are kept."""
    cdef unsigned int slot
    cdef PyObject* hit
    if n <= 0 or n > 64:
        return PyUnicode_DecodeUTF8(s, n, NULL)
    slot = (<unsigned int>n * 31 + <unsigned char>s[0] + <unsigned char>s[n - 1] * 7) & 63
    hit = mmate_strcache[slot]
    if (hit is not NULL and MMATE_STR_LEN(hit) == n and MMATE_STR_IS_ASCII(hit)
            and memcmp(MMATE_STR_DATA(hit), s, n) == 0):
        return <object>hit
    value = PyUnicode_DecodeUTF8(s, n, NULL)
    if MMATE_STR_IS_ASCII(<PyObject*>value) and MMATE_STR_LEN(<PyObject*>value) == n:
        Py_INCREF(value)
        Py_XDECREF(hit)
        mmate_strcache[slot] = <PyObject*>value
    return value
