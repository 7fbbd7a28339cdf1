# cython: language_level=3
"""The next quote of a string that has no escapes (inline; cimported by envelope.pyx and
payload_reader.pyx): the strings of a clean body are short (Go header values, ids, field values),
where a libc ``memchr`` call costs more than the bytes it reads; 8 bytes at a time instead."""
from libc.stdint cimport uint64_t
from libc.string cimport memchr, memcpy


cdef extern from *:
    """
    #if defined(__GNUC__) && defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    #define MMATE_SWAR_QUOTE 1
    #define MMATE_CTZ64(x) __builtin_ctzll(x)
    #else
    #define MMATE_SWAR_QUOTE 0
    #define MMATE_CTZ64(x) 0
    #endif
    """
    const bint MMATE_SWAR_QUOTE
    int MMATE_CTZ64(uint64_t x) nogil


cdef inline Py_ssize_t _next_quote(const unsigned char* p, Py_ssize_t i, Py_ssize_t n) noexcept nogil:
    """The index of the first quote in p[i:n], -1 when there is none."""
    cdef uint64_t x, hit
    cdef const void* q
    if not MMATE_SWAR_QUOTE:
        q = memchr(p + i, 34, n - i) if i < n else NULL
        return -1 if q == NULL else <const unsigned char*>q - p
    while i + 8 <= n:
        memcpy(&x, p + i, 8)
        x ^= 0x2222222222222222ULL
        # the high bit of each zero byte (and maybe of bytes above one): the lowest is exact
        hit = (x - 0x0101010101010101ULL) & ~x & 0x8080808080808080ULL
        if hit:
            return i + (MMATE_CTZ64(hit) >> 3)
        i += 8
    while i < n:
        if p[i] == 34:
            return i
        i += 1
    return -1
