# cython: language_level=3
"""Growing a bytearray write buffer in C, shared by frames.pyx and wire.pyx (cimported: inline
functions only, so no module of its own at run time)."""
from cpython.bytearray cimport PyByteArray_AS_STRING, PyByteArray_GET_SIZE, PyByteArray_Resize


cdef extern from "Python.h":
    ctypedef struct PyByteArrayObject:
        Py_ssize_t ob_alloc


cdef inline unsigned char* _grow(bytearray out, Py_ssize_t n) except NULL:
    """Extend ``out`` by n bytes; returns a pointer to the new tail. The allocation at least
    doubles when it must grow (bytearray's own step is 1/8: a write buffer filled message by
    message would be copied ~9 times over)."""
    cdef Py_ssize_t old = PyByteArray_GET_SIZE(out)
    cdef Py_ssize_t want = old + n
    if want >= (<PyByteArrayObject*>out).ob_alloc and want < 2 * old:
        PyByteArray_Resize(out, 2 * old)  # then a minor downsize below: the allocation stays
    PyByteArray_Resize(out, want)
    return <unsigned char*>PyByteArray_AS_STRING(out) + old
