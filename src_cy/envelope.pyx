# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True
"""Compiled Mmate envelope codec; contract: mmate_fast/_cy/envelope.pyi, twin: mmate_fast/_py/envelope.py.

orjson writes the JSON (one call for a whole envelope: a list ``[id, type, timestamp, ...]`` with sorted
keys below it); one C pass then turns that list into the envelope object (Go's key order), escapes
``< > &`` U+2028 U+2029 inside strings and rewrites non-integer number tokens into Go's float64
notation. orjson writes NaN/Inf as ``null``, so a ``null`` in the output triggers a walk for them.
Ids come from a 4 KiB os.urandom buffer (reset in forked children), timestamps are formatted in C and
``utc_timestamp()`` is cached per second.

Decoding keeps every integer exact: orjson turns integers beyond 64 bits into floats, so a body with a
run of 19 or more digits (found by a C scan that mostly skips 19 bytes at a time) is parsed again with
the stdlib parser (the twin's ``_reparse``).
"""
import base64
import datetime
import decimal
import enum
import math
import os
import re
from collections.abc import Mapping

import orjson

cimport cython

from mmate_fast._py.envelope import _FAILED, _reparse
from mmate_fast.errors import ContractError, EnvelopeError

from cpython.buffer cimport PyBUF_SIMPLE, PyBuffer_Release, PyObject_GetBuffer
from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_FromStringAndSize, PyBytes_GET_SIZE
from cpython.dict cimport PyDict_GetItem
from cpython.mem cimport PyMem_Free, PyMem_Malloc, PyMem_Realloc
from cpython.object cimport PyObject
from cpython.pycapsule cimport PyCapsule_New
from cpython.unicode cimport PyUnicode_DecodeUTF8
from libc.stdint cimport int64_t, uint64_t
from libc.string cimport memchr, memcpy

from _strcache cimport _utf8_cached
from posix.time cimport CLOCK_REALTIME, clock_gettime, timespec

cdef extern from "Python.h":
    object PyUnicode_New(Py_ssize_t size, Py_UCS4 maxchar)
    unsigned char* PyUnicode_1BYTE_DATA(object o)
    const char* PyUnicode_AsUTF8AndSize(object s, Py_ssize_t* size) except NULL

_UTC = datetime.UTC
_MAX_DEPTH = 254
_OPTS = orjson.OPT_SORT_KEYS | orjson.OPT_PASSTHROUGH_DATETIME | orjson.OPT_PASSTHROUGH_DATACLASS
_INT64_MIN = -(2**63)
_UINT64_MAX = 2**64 - 1
_MIN_UNIX = -62135596800  # 0001-01-01T00:00:00Z
_MAX_UNIX = 253402300799  # 9999-12-31T23:59:59Z
_dumps_raw = orjson.dumps
_loads = orjson.loads
_Fragment = orjson.Fragment
_JSONEncodeError = orjson.JSONEncodeError
_JSONDecodeError = orjson.JSONDecodeError
_datetime = datetime.datetime
_date = datetime.date
_timedelta = datetime.timedelta
_Decimal = decimal.Decimal
_Enum = enum.Enum
_isfinite = math.isfinite
_floor = math.floor
_urandom = os.urandom


def _typed_classes():
    from mmate_fast._py import frames as _pyf
    classes = [_pyf.Typed]
    try:
        from mmate_fast._cy import frames as _cyf
        classes.append(_cyf.Typed)
    except ImportError:
        pass
    return tuple(classes)


_TYPED = _typed_classes()
_ENUM_OR_TYPED = (_Enum, *_TYPED)


@cython.freelist(16)  # one per message on every consume path: reuse the memory
cdef class Envelope:
    """A decoded envelope. ``timestamp`` is the raw string; ``headers`` is {} when absent;
    ``payload`` is the decoded JSON value ({} when absent).

    ``decode_envelope`` keeps the headers object of a plain body (its JSON checked as it is read) as
    bytes and decodes it on first access: most handlers never read the ~14 Go headers. A payload
    object in the strict plain subset is kept the same way (``raw_payload``): the typed consume
    path reads the message's fields from those bytes with no dict in between."""

    # fields: mmate_fast/_cy/envelope.pxd (payload_reader cimports them)

    def __init__(self, id, type, timestamp, correlation_id=None, reply_to=None, headers=None,
                 payload=None):
        self.id = id
        self.type = type
        self.timestamp = timestamp
        self.correlation_id = correlation_id
        self.reply_to = reply_to
        self.headers = {} if headers is None else headers
        self.payload = {} if payload is None else payload

    @property
    def headers(self):
        """The envelope headers (a dict; {} when the body had none), decoded on first access."""
        if self._raw_headers is not None:
            self._headers = _loads(self._raw_headers)
            self._raw_headers = None
        return self._headers

    @headers.setter
    def headers(self, value):
        self._headers = value
        self._raw_headers = None

    @property
    def payload(self):
        """The decoded payload ({} when the body had none), decoded on first access."""
        if self._raw_payload is not None:
            self._payload = _loads(self._raw_payload)
            self._raw_payload = None
        return self._payload

    @payload.setter
    def payload(self, value):
        self._payload = value
        self._raw_payload = None

    @property
    def raw_payload(self):
        """The payload's JSON bytes while not decoded yet (a JSON object in the strict plain subset:
        strings without escapes or bytes from 0x80, numbers of up to 18 characters without exponent,
        nesting up to 32), else None. A payload reader may read the fields from it directly."""
        return self._raw_payload

    cdef tuple _values(self):
        return (self.id, self.type, self.timestamp, self.correlation_id, self.reply_to, self.headers,
                self.payload)

    def __eq__(self, other):
        if isinstance(other, Envelope):
            return self._values() == (<Envelope>other)._values()
        return NotImplemented

    __hash__ = None

    def __repr__(self):
        return (f"Envelope(id={self.id!r}, type={self.type!r}, timestamp={self.timestamp!r}, "
                f"correlation_id={self.correlation_id!r}, reply_to={self.reply_to!r}, "
                f"headers={self.headers!r}, payload={self.payload!r})")


# --------------------------------------------------------------------------- ids
cdef enum:
    RND_SIZE = 4096
cdef unsigned char _rnd[RND_SIZE]
cdef Py_ssize_t _rpos = RND_SIZE
cdef const char* _HEX = b"0123456789abcdef"


def _reset_random():
    """After fork: drop the buffered bytes so parent and child never share ids."""
    global _rpos
    _rpos = RND_SIZE


os.register_at_fork(after_in_child=_reset_random)


def new_id():
    """A random lowercase UUID v4 with hyphens (36 chars), from a buffered CSPRNG (os.urandom)."""
    global _rpos
    cdef unsigned char r[16]
    cdef bytes fresh
    if _rpos > RND_SIZE - 16:
        fresh = _urandom(RND_SIZE)  # may release the GIL: take our bytes right after the copy
        memcpy(_rnd, PyBytes_AS_STRING(fresh), RND_SIZE)
        _rpos = 0
    memcpy(r, _rnd + _rpos, 16)
    _rpos += 16
    r[6] = (r[6] & 0x0F) | 0x40
    r[8] = (r[8] & 0x3F) | 0x80
    s = PyUnicode_New(36, 127)
    cdef unsigned char* d = PyUnicode_1BYTE_DATA(s)
    cdef int i, k = 0
    for i in range(16):
        if i == 4 or i == 6 or i == 8 or i == 10:
            d[k] = 45  # '-'
            k += 1
        d[k] = _HEX[r[i] >> 4]
        d[k + 1] = _HEX[r[i] & 15]
        k += 2
    return s


# --------------------------------------------------------------------------- timestamps
cdef inline void _put2(unsigned char* d, int v) noexcept:
    d[0] = 48 + v // 10
    d[1] = 48 + v % 10


cdef object _civil(int64_t unix):
    """``YYYY-MM-DDThh:mm:ssZ`` of whole Unix seconds (caller checks years 1..9999)."""
    cdef int64_t days = unix // 86400
    cdef int64_t sod = unix - days * 86400
    if sod < 0:
        sod += 86400
        days -= 1
    cdef int64_t z = days + 719468
    cdef int64_t era = (z if z >= 0 else z - 146096) // 146097
    cdef int64_t doe = z - era * 146097
    cdef int64_t yoe = (doe - doe // 1460 + doe // 36524 - doe // 146096) // 365
    cdef int64_t y = yoe + era * 400
    cdef int64_t doy = doe - (365 * yoe + yoe // 4 - yoe // 100)
    cdef int64_t mp = (5 * doy + 2) // 153
    cdef int dd = <int>(doy - (153 * mp + 2) // 5 + 1)
    cdef int mm = <int>(mp + 3 if mp < 10 else mp - 9)
    if mm <= 2:
        y += 1
    s = PyUnicode_New(20, 127)
    cdef unsigned char* d = PyUnicode_1BYTE_DATA(s)
    _put2(d, <int>(y // 100))
    _put2(d + 2, <int>(y % 100))
    d[4] = 45
    _put2(d + 5, mm)
    d[7] = 45
    _put2(d + 8, dd)
    d[10] = 84  # 'T'
    _put2(d + 11, <int>(sod // 3600))
    d[13] = 58
    _put2(d + 14, <int>((sod // 60) % 60))
    d[16] = 58
    _put2(d + 17, <int>(sod % 60))
    d[19] = 90  # 'Z'
    return s


cdef object _civil_checked(object unix):
    if not _MIN_UNIX <= unix <= _MAX_UNIX:
        raise ContractError(f"timestamp {unix} is outside the years 1..9999")
    return _civil(<int64_t>unix)


cdef int64_t _ts_sec = -(1 << 62)
cdef object _ts_str = None


def utc_timestamp(unix_seconds=None):
    """Envelope timestamp: UTC RFC 3339, whole seconds (truncated), ``Z``. Now when None (cached
    per second)."""
    global _ts_sec, _ts_str
    cdef timespec ts
    if unix_seconds is None:
        clock_gettime(CLOCK_REALTIME, &ts)
        if ts.tv_sec != _ts_sec:
            _ts_str = _civil(ts.tv_sec)
            _ts_sec = ts.tv_sec
        return _ts_str
    try:
        sec = _floor(unix_seconds)
    except (TypeError, ValueError, OverflowError) as exc:
        raise ContractError(f"unix_seconds must be a finite number, not {unix_seconds!r}") from exc
    return _civil_checked(sec)


def format_timestamp(value):
    """Envelope timestamp of a datetime (naive = UTC): converted to UTC, truncated to seconds."""
    if not isinstance(value, _datetime):
        raise ContractError(f"a timestamp must be a datetime.datetime, not {type(value).__qualname__}")
    off = value.utcoffset()
    d = value.replace(tzinfo=None)
    if off:
        try:
            d = d - off
        except OverflowError as exc:
            raise ContractError(f"{value!r} is outside the years 1..9999 in UTC") from exc
    s = PyUnicode_New(20, 127)
    cdef unsigned char* p = PyUnicode_1BYTE_DATA(s)
    cdef int y = d.year
    _put2(p, y // 100)
    _put2(p + 2, y % 100)
    p[4] = 45
    _put2(p + 5, d.month)
    p[7] = 45
    _put2(p + 8, d.day)
    p[10] = 84
    _put2(p + 11, d.hour)
    p[13] = 58
    _put2(p + 14, d.minute)
    p[16] = 58
    _put2(p + 17, d.second)
    p[19] = 90
    return s


def format_go_time(value):
    """Payload time: RFC 3339 with fraction (trailing zeros trimmed) and the value's own offset,
    ``Z`` for UTC/naive; as Go's time.Time MarshalJSON."""
    if not isinstance(value, _datetime):
        raise ContractError(f"a time must be a datetime.datetime, not {type(value).__qualname__}")
    d = value
    s = f"{d.year:04d}-{d.month:02d}-{d.day:02d}T{d.hour:02d}:{d.minute:02d}:{d.second:02d}"
    if d.microsecond:
        s += f".{d.microsecond:06d}".rstrip("0")
    off = d.utcoffset()
    secs = 0 if off is None else off.days * 86400 + off.seconds
    if secs == 0:
        return s + "Z"
    zone = int(secs / 60)  # Go: minutes truncated toward zero; the sign comes from the minutes
    sign = "+"
    if zone < 0:
        sign, zone = "-", -zone
    return f"{s}{sign}{zone // 60:02d}:{zone % 60:02d}"


_RFC3339 = re.compile(
    r"([0-9]{4})-([0-9]{2})-([0-9]{2})[Tt]([0-9]{2}):([0-9]{2}):([0-9]{2})(?:\.([0-9]{1,9}))?"
    r"(?:([Zz])|([+-])([0-9]{2}):([0-9]{2}))")


def parse_timestamp(value):
    """Parse RFC 3339 (fractions up to 9 digits, truncated to microseconds; ``Z``/``z`` or offsets)
    to an aware datetime. Raises EnvelopeError(reason="bad-timestamp")."""
    m = _RFC3339.fullmatch(value) if isinstance(value, str) else None
    if m is None:
        raise EnvelopeError(f"timestamp {value!r} is not RFC 3339", "bad-timestamp")
    y, mo, d, h, mi, s, frac, z, sign, oh, om = m.groups()
    try:
        if z is not None:
            tz = _UTC
        else:
            if int(oh) > 23 or int(om) > 59:
                raise ValueError("offset out of range")
            off = _timedelta(hours=int(oh), minutes=int(om))
            tz = datetime.timezone(-off if sign == "-" else off)
        us = int((frac + "00000")[:6]) if frac else 0
        return _datetime(int(y), int(mo), int(d), int(h), int(mi), int(s), us, tzinfo=tz)
    except ValueError as exc:
        raise EnvelopeError(f"timestamp {value!r} is not a valid time: {exc}", "bad-timestamp") from None


# --------------------------------------------------------------------------- output buffer
cdef struct Buf:
    char* p
    Py_ssize_t n
    Py_ssize_t cap


cdef int _reserve(Buf* b, Py_ssize_t extra) except -1:
    cdef Py_ssize_t need = b.n + extra
    cdef Py_ssize_t cap
    cdef char* np
    if need <= b.cap:
        return 0
    cap = b.cap * 2
    if cap < need:
        cap = need
    np = <char*>PyMem_Realloc(b.p, cap)
    if np == NULL:
        raise MemoryError()
    b.p = np
    b.cap = cap
    return 0


cdef inline int _put(Buf* b, const char* src, Py_ssize_t n) except -1:
    if b.n + n > b.cap:
        _reserve(b, n)
    memcpy(b.p + b.n, src, n)
    b.n += n
    return 0


cdef inline int _putc(Buf* b, char c) except -1:
    if b.n + 1 > b.cap:
        _reserve(b, 1)
    b.p[b.n] = c
    b.n += 1
    return 0


cdef int _put_int(Buf* b, int64_t v) except -1:
    cdef char tmp[24]
    cdef int k = 24
    if v == 0:
        return _putc(b, 48)
    while v > 0:
        k -= 1
        tmp[k] = <char>(48 + v % 10)
        v //= 10
    return _put(b, tmp + k, 24 - k)


# --------------------------------------------------------------------------- Go numbers
cdef int _go_number(const unsigned char* t, Py_ssize_t L, Buf* b) except -1:
    """Rewrite a JSON number token (shortest digits) as Go prints a float64 (see the twin's go_number)."""
    cdef bint neg = t[0] == 45
    cdef Py_ssize_t i = 1 if neg else 0
    cdef Py_ssize_t nd = 0, nf = 0, ne = 0, k
    cdef bint dot = False
    cdef int64_t exp = 0, sx
    cdef int esign = 1
    cdef unsigned char c
    cdef char stackbuf[64]
    cdef char* dig = stackbuf
    if L > 64:
        dig = <char*>PyMem_Malloc(L)
        if dig == NULL:
            raise MemoryError()
    try:
        while i < L:
            c = t[i]
            if c == 101 or c == 69:  # e E
                break
            if c == 46:
                dot = True
            else:
                if dot:
                    nf += 1
                if nd > 0 or c != 48:
                    dig[nd] = <char>c
                    nd += 1
            i += 1
        if i < L:
            i += 1
            if t[i] == 43:
                i += 1
            elif t[i] == 45:
                esign = -1
                i += 1
            ne = L - i
            if ne > 9:
                raise ContractError(f"number {(<bytes>t[:L]).decode()} has an exponent beyond Go's "
                                    "float64 range")
            while i < L:
                exp = exp * 10 + (t[i] - 48)
                i += 1
        exp = esign * exp - nf
        while nd > 0 and dig[nd - 1] == 48:
            nd -= 1
            exp += 1
        if neg:
            _putc(b, 45)
        if nd == 0:
            return _putc(b, 48)
        sx = nd - 1 + exp
        if sx < -6 or sx >= 21:
            _putc(b, dig[0])
            if nd > 1:
                _putc(b, 46)
                _put(b, dig + 1, nd - 1)
            if sx < 0:
                _put(b, b"e-", 2)
                return _put_int(b, -sx)
            _put(b, b"e+", 2)
            return _put_int(b, sx)
        if exp >= 0:
            _put(b, dig, nd)
            _reserve(b, exp)
            for k in range(exp):
                b.p[b.n + k] = 48
            b.n += exp
            return 0
        k = nd + exp
        if k > 0:
            _put(b, dig, k)
            _putc(b, 46)
            return _put(b, dig + k, nd - k)
        _put(b, b"0.", 2)
        _reserve(b, -k)
        for i in range(-k):
            b.p[b.n + i] = 48
        b.n += -k
        return _put(b, dig, nd)
    finally:
        if dig != stackbuf:
            PyMem_Free(dig)


def go_number(bytes token):
    """Go's float64 notation of one JSON number token (exposed for tests)."""
    cdef Buf b
    b.p = <char*>PyMem_Malloc(64)
    b.n = 0
    b.cap = 64
    try:
        _go_number(<const unsigned char*>PyBytes_AS_STRING(token), PyBytes_GET_SIZE(token), &b)
        return PyBytes_FromStringAndSize(b.p, b.n)
    finally:
        PyMem_Free(b.p)


# --------------------------------------------------------------------------- the Go pass
cdef unsigned char _SPECIAL[256]   # bytes that end a plain run inside a string
cdef unsigned char _NUMCH[256]     # 1: digit, 2: . e E, 3: + -


cdef void _init_tables() noexcept:
    cdef int i
    for i in range(256):
        _SPECIAL[i] = 0
        _NUMCH[i] = 0
    for c in b'"\\<>&\xe2':
        _SPECIAL[c] = 1
    for i in range(48, 58):
        _NUMCH[i] = 1
    _NUMCH[46] = 2
    _NUMCH[101] = 2
    _NUMCH[69] = 2
    _NUMCH[43] = 3
    _NUMCH[45] = 3


_init_tables()


cdef bytes _go_fix(bytes src, const char** kp, Py_ssize_t* kl, int nkeys):
    """One pass over orjson output: Go string escapes, Go float notation, and (nkeys > 0) the
    top-level list ``[a,b,...]`` turned into ``{"k0":a,"k1":b,...}`` (kp[i] holds the separators)."""
    cdef const unsigned char* s = <const unsigned char*>PyBytes_AS_STRING(src)
    cdef Py_ssize_t n = PyBytes_GET_SIZE(src)
    cdef Py_ssize_t i = 0, j, run = 0
    cdef int depth = 0, ki = 0, cls
    cdef bint isfloat, changed = nkeys > 0
    cdef unsigned char c
    cdef Buf b
    b.cap = n + (n >> 3) + 64
    for j in range(nkeys):
        b.cap += kl[j]
    b.p = <char*>PyMem_Malloc(b.cap)
    b.n = 0
    if b.p == NULL:
        raise MemoryError()
    try:
        while i < n:
            c = s[i]
            if c == 34:  # string
                i += 1
                while True:
                    while i < n and not _SPECIAL[s[i]]:
                        i += 1
                    if i >= n:
                        break
                    c = s[i]
                    if c == 34:
                        i += 1
                        break
                    if c == 92:
                        i += 2
                        continue
                    if c == 0xE2:
                        if i + 2 < n and s[i + 1] == 0x80 and (s[i + 2] == 0xA8 or s[i + 2] == 0xA9):
                            _put(&b, <const char*>s + run, i - run)
                            if s[i + 2] == 0xA8:
                                _put(&b, b"\\u2028", 6)
                            else:
                                _put(&b, b"\\u2029", 6)
                            i += 3
                            run = i
                            changed = True
                        else:
                            i += 1
                        continue
                    _put(&b, <const char*>s + run, i - run)
                    if c == 60:
                        _put(&b, b"\\u003c", 6)
                    elif c == 62:
                        _put(&b, b"\\u003e", 6)
                    else:
                        _put(&b, b"\\u0026", 6)
                    i += 1
                    run = i
                    changed = True
            elif c == 45 or (48 <= c <= 57):
                j = i + 1
                isfloat = False
                while j < n:
                    cls = _NUMCH[s[j]]
                    if cls == 0:
                        break
                    if cls == 2:
                        isfloat = True
                    j += 1
                if isfloat:
                    _put(&b, <const char*>s + run, i - run)
                    _go_number(s + i, j - i, &b)
                    run = j
                    changed = True
                i = j
            elif nkeys:
                if c == 91 or c == 123:  # [ {
                    if depth == 0:
                        _put(&b, kp[0], kl[0])
                        ki = 1
                        run = i + 1
                    depth += 1
                elif c == 93 or c == 125:  # ] }
                    depth -= 1
                    if depth == 0:
                        _put(&b, <const char*>s + run, i - run)
                        _putc(&b, 125)
                        run = i + 1
                elif c == 44 and depth == 1:
                    _put(&b, <const char*>s + run, i - run)
                    _put(&b, kp[ki], kl[ki])
                    ki += 1
                    run = i + 1
                i += 1
            else:
                i += 1
        if not changed:
            return src
        _put(&b, <const char*>s + run, n - run)
        return PyBytes_FromStringAndSize(b.p, b.n)
    finally:
        PyMem_Free(b.p)


# --------------------------------------------------------------------------- value encoding
def _default(obj):
    """orjson hook: Go's representation of the non-JSON types of the contract."""
    if isinstance(obj, _datetime):
        return _Fragment(b'"' + format_go_time(obj).encode() + b'"')
    if isinstance(obj, _date):
        return _Fragment(f'"{obj.year:04d}-{obj.month:02d}-{obj.day:02d}"'.encode())
    if isinstance(obj, _timedelta):
        ns = ((obj.days * 86400 + obj.seconds) * 1_000_000 + obj.microseconds) * 1000
        return _Fragment(str(ns).encode())
    if isinstance(obj, (bytes, bytearray, memoryview)):
        return _Fragment(b'"' + base64.b64encode(obj) + b'"')
    if isinstance(obj, _Decimal):
        if not obj.is_finite():
            raise ContractError(f"{obj} is not a JSON number (Go refuses NaN/Inf)")
        return _Fragment(str(obj).encode())
    if isinstance(obj, _TYPED):
        return obj.value
    if isinstance(obj, float):
        if not _isfinite(obj):
            raise ContractError(f"{obj!r} is not a JSON number (Go refuses NaN/Inf)")
        return _Fragment(float.__repr__(obj).encode())
    raise ContractError(f"cannot encode a value of type {type(obj).__module__}.{type(obj).__qualname__} "
                        "as Mmate JSON")


cdef int _check_finite(object value, int depth) except -1:
    """orjson writes NaN/Inf as null: find them (only called when the output holds ``null``)."""
    if depth > _MAX_DEPTH:
        return 0
    if isinstance(value, float):
        if not _isfinite(value):
            raise ContractError(f"{value!r} is not a JSON number (Go refuses NaN/Inf)")
    elif isinstance(value, dict):
        for v in (<dict>value).values():
            _check_finite(v, depth + 1)
    elif isinstance(value, (list, tuple)):
        for v in value:
            _check_finite(v, depth + 1)
    elif isinstance(value, _ENUM_OR_TYPED):
        _check_finite(value.value, depth + 1)
    return 0


cdef object _big_int(object value):
    """An int beyond 64 bits as its exact number literal (orjson stops at 64 bits)."""
    try:
        return _Fragment(int.__repr__(value).encode())
    except ValueError:  # more digits than sys.get_int_max_str_digits() allows
        raise ContractError(f"an int of {value.bit_length()} bits has more digits than Python writes as "
                            "text (sys.set_int_max_str_digits); send it as a string") from None


cdef object _widen(object value, int depth):
    """Copy of value with ints beyond 64 bits as raw number fragments (orjson stops at 64 bits)."""
    if isinstance(value, bool):
        return value
    if isinstance(value, int):
        if _INT64_MIN <= value <= _UINT64_MAX:
            return value
        return _big_int(value)
    if isinstance(value, dict):
        if depth >= _MAX_DEPTH:
            raise ContractError("cannot encode as Mmate JSON: Recursion limit reached")
        return {k: _widen(v, depth + 1) for k, v in (<dict>value).items()}
    if isinstance(value, (list, tuple)):
        if depth >= _MAX_DEPTH:
            raise ContractError("cannot encode as Mmate JSON: Recursion limit reached")
        return [_widen(v, depth + 1) for v in value]
    if isinstance(value, _ENUM_OR_TYPED):
        return _widen(value.value, depth)
    return value


cdef bytes _dumps(object value):
    try:
        return _dumps_raw(value, _default, _OPTS)
    except _JSONEncodeError as exc:
        cause = exc.__cause__
        if isinstance(cause, ContractError):
            raise cause from None
        if "64-bit" not in str(exc):
            raise ContractError(f"cannot encode as Mmate JSON: {exc}") from None
    try:
        return _dumps_raw(_widen(value, 0), _default, _OPTS)
    except _JSONEncodeError as exc:
        cause = exc.__cause__
        if isinstance(cause, ContractError):
            raise cause from None
        raise ContractError(f"cannot encode as Mmate JSON: {exc}") from None


def encode_json(value):
    """Go-compatible JSON of one value (keys sorted at every level), e.g. a payload."""
    cdef bytes out = _dumps(value)
    if b"null" in out:
        _check_finite(value, 0)
    return _go_fix(out, NULL, NULL, 0)


cdef bytes K_ID = b'{"id":'
cdef bytes K_TYPE = b',"type":'
cdef bytes K_TS = b',"timestamp":'
cdef bytes K_CID = b',"correlationId":'
cdef bytes K_RT = b',"replyTo":'
cdef bytes K_HDR = b',"headers":'
cdef bytes K_PL = b',"payload":'
_EMPTY = {}


cdef inline int _need_str(str name, object value) except -1:
    if not isinstance(value, str):
        raise ContractError(f"envelope {name} must be a str, not {type(value).__qualname__}")
    return 0


def encode_envelope(id, type, timestamp, correlation_id, reply_to, headers, payload):
    """The whole body, keys in Go's order (id, type, timestamp, correlationId?, replyTo?, headers?,
    payload)."""
    cdef const char* kp[7]
    cdef Py_ssize_t kl[7]
    cdef int nk = 3
    _need_str("id", id)
    _need_str("type", type)
    _need_str("timestamp", timestamp)
    items = [id, type, timestamp]
    kp[0] = K_ID
    kl[0] = 6
    kp[1] = K_TYPE
    kl[1] = 8
    kp[2] = K_TS
    kl[2] = 13
    if correlation_id is not None and correlation_id != "":
        _need_str("correlationId", correlation_id)
        items.append(correlation_id)
        kp[nk] = K_CID
        kl[nk] = 17
        nk += 1
    if reply_to is not None and reply_to != "":
        _need_str("replyTo", reply_to)
        items.append(reply_to)
        kp[nk] = K_RT
        kl[nk] = 11
        nk += 1
    if headers is not None:
        if not isinstance(headers, dict):
            if not isinstance(headers, Mapping):
                raise ContractError(f"headers must be a mapping, not {(<object>headers).__class__.__qualname__}")
            headers = dict(headers)
        items.append(headers)
        kp[nk] = K_HDR
        kl[nk] = 11
        nk += 1
    if payload is None:
        payload = _EMPTY
    items.append(payload)
    kp[nk] = K_PL
    kl[nk] = 11
    nk += 1
    cdef bytes out = _dumps(items)
    if b"null" in out:
        _check_finite(items, 0)
    return _go_fix(out, kp, kl, nk)


# --------------------------------------------------------------------------- decoding
DEF LONG_RUN = 19  # digits: -9999999999999999999 is the shortest integer orjson reads as a float
DEF HALF = 9


cdef inline bint _digit(unsigned char c) noexcept nogil:
    return <unsigned char>(c - 48) < 10


cdef bint _number_run(const unsigned char* p, Py_ssize_t n) noexcept nogil:
    """True when p[0:n] holds LONG_RUN digits in a row outside JSON strings (a number token that
    long); digits inside strings (nanosecond stamps, snowflake ids sent as text) do not count."""
    cdef Py_ssize_t i = 0, run = 0
    cdef unsigned char c
    cdef bint in_str = False
    while i < n:
        c = p[i]
        if in_str:
            if c == 92:  # backslash: the next byte is escaped
                i += 1
            elif c == 34:
                in_str = False
        elif c == 34:
            in_str = True
            run = 0
        elif _digit(c):
            run += 1
            if run >= LONG_RUN:
                return True
        else:
            run = 0
        i += 1
    return False


cdef bint _digit_run(const unsigned char* p, Py_ssize_t n) noexcept nogil:
    """True when p[0:n] holds LONG_RUN digits in a row in a number token. Probes the last byte a
    run could end on: bodies without long numbers are mostly skipped LONG_RUN (or, next to short
    digit runs such as ids and times, HALF + 1) bytes at a time; only where both probes are digits
    is it scanned, and a run found that way is confirmed by one pass that skips strings."""
    cdef Py_ssize_t i = LONG_RUN - 1, j, lo
    while i < n:
        if not _digit(p[i]):  # no run of LONG_RUN ends at i .. i + LONG_RUN - 1
            i += LONG_RUN
            continue
        if not _digit(p[i - HALF]):  # a run through i starts after i - HALF: it ends at i + HALF + 1+
            i += HALF + 1
            continue
        lo = i - (LONG_RUN - 1)
        j = i - 1
        while j >= lo and _digit(p[j]):
            j -= 1
        if j < lo:
            while j >= 0 and _digit(p[j]):
                j -= 1
            if j < 0 or p[j] != 34:
                return _number_run(p, n)
            # the run starts right after a quote: inside a string (no number token starts there),
            # e.g. a 19-digit time_ns stamp: skip it without the full pass
            j = i + 1
            while j < n and _digit(p[j]):
                j += 1
        i = j + LONG_RUN  # p[j] is no digit: a run can end at j + LONG_RUN at the earliest
    return False


cdef bint _long_digits_any(object body) noexcept:
    """``_long_digits`` of a body that is not ``bytes`` (str, bytearray, memoryview, ...)."""
    cdef Py_buffer view
    cdef const char* s
    cdef Py_ssize_t n
    cdef bint found
    try:
        if isinstance(body, str):
            s = PyUnicode_AsUTF8AndSize(body, &n)
            return _digit_run(<const unsigned char*>s, n)
        PyObject_GetBuffer(body, &view, PyBUF_SIMPLE)
    except Exception:  # not text or bytes: orjson says what is wrong
        return False
    found = _digit_run(<const unsigned char*>view.buf, view.len)
    PyBuffer_Release(&view)
    return found


cdef inline bint _long_digits(object body) noexcept:
    """True when ``body`` holds a digit run long enough to be an integer orjson rounds."""
    if type(body) is bytes:
        return _digit_run(<const unsigned char*>PyBytes_AS_STRING(body), PyBytes_GET_SIZE(body))
    return _long_digits_any(body)


cdef str _tname(object v):
    return (<object>v).__class__.__name__


cdef inline object _get(dict doc, str key):
    cdef PyObject* p = PyDict_GetItem(doc, key)
    if p == NULL:
        return None
    return <object>p


cdef inline int _str_or_none(str key, object v) except -1:
    if v is not None and type(v) is not str:
        raise EnvelopeError(f"envelope field {key!r} must be a string, not {_tname(v)}", "bad-field")
    return 0


# ---- the plain-body fast path: what Go and we write, read without building the headers
DEF MAX_PLAIN_DEPTH = 32
DEF MAX_NUMBER_LEN = 18


cdef inline Py_ssize_t _ws(const unsigned char* p, Py_ssize_t i, Py_ssize_t n) noexcept nogil:
    while i < n and p[i] <= 32 and (p[i] == 32 or p[i] == 10 or p[i] == 13 or p[i] == 9):
        i += 1
    return i


cdef unsigned char _STOP_STRICT[256]  # 1: ends a plain run of a strict string (quote, escape, <0x20, >=0x80)
cdef unsigned char _STOP_ANY[256]  # 1: quote or backslash
cdef unsigned char _STOP_TEXT[256]  # 1: quote, backslash or <0x20 (UTF-8 is checked when decoded)


cdef void _init_stops() noexcept:
    cdef int c
    for c in range(256):
        _STOP_STRICT[c] = 1 if (c == 34 or c == 92 or c < 0x20 or c >= 0x80) else 0
        _STOP_ANY[c] = 1 if (c == 34 or c == 92) else 0
        _STOP_TEXT[c] = 1 if (c == 34 or c == 92 or c < 0x20) else 0


_init_stops()


cdef enum:
    S_ANY = 0  # any value orjson will judge
    S_STRICT = 1  # only the plain subset


cdef extern from *:
    """
    #define MMATE_ONES 0x0101010101010101ULL
    #define MMATE_HIGHS 0x8080808080808080ULL
    #if defined(__SSE2__)
    #include <emmintrin.h>
    #endif

    /* The index of the first byte from p[i] that may end a plain run of a string: a quote, a
       backslash, a byte below 0x20 and (high) a byte from 0x80; n when there is none before n.
       16 bytes at a time with SSE2 (signed "< 0x20" is exactly "< 0x20 or >= 0x80"), else 8 at a
       time (the lowest flagged byte of the word tricks is exact); the last bytes one by one. */
    static inline Py_ssize_t mmate_stop_at(const unsigned char* p, Py_ssize_t i, Py_ssize_t n,
                                           int high, const unsigned char* stop) {
    #if defined(__SSE2__)
        const __m128i q = _mm_set1_epi8(34), b = _mm_set1_epi8(92), c = _mm_set1_epi8(32);
        const __m128i c1 = _mm_set1_epi8(31);
        while (i + 16 <= n) {
            __m128i x = _mm_loadu_si128((const __m128i*)(p + i));
            __m128i hit = _mm_or_si128(_mm_cmpeq_epi8(x, q), _mm_cmpeq_epi8(x, b));
            if (high)
                hit = _mm_or_si128(hit, _mm_cmplt_epi8(x, c));
            else
                hit = _mm_or_si128(hit, _mm_cmpeq_epi8(_mm_min_epu8(x, c1), x));
            unsigned int m = (unsigned int)_mm_movemask_epi8(hit);
            if (m)
                return i + __builtin_ctz(m);
            i += 16;
        }
    #else
        while (i + 8 <= n) {
            unsigned long long x, hit;
            memcpy(&x, p + i, 8);
            unsigned long long xq = x ^ (MMATE_ONES * 34), xb = x ^ (MMATE_ONES * 92);
            hit = ((xq - MMATE_ONES) & ~xq) | ((xb - MMATE_ONES) & ~xb) | ((x - MMATE_ONES * 32) & ~x);
            if (high)
                hit |= x;
            if (hit & MMATE_HIGHS)
                break;  /* the byte loop finds which one (within these 8 bytes) */
            i += 8;
        }
    #endif
        while (i < n && !stop[p[i]])
            i++;
        return i;
    }
    """
    const uint64_t ONES "MMATE_ONES"
    const uint64_t HIGHS "MMATE_HIGHS"
    Py_ssize_t _stop_at "mmate_stop_at"(const unsigned char* p, Py_ssize_t i, Py_ssize_t n, int high,
                                        const unsigned char* stop) noexcept nogil


cdef inline Py_ssize_t _strict_end(const unsigned char* p, Py_ssize_t i, Py_ssize_t n) noexcept nogil:
    """p[i] is the first byte inside a string: the index after its closing quote when the string
    has no escape, control byte or byte from 0x80 (the strict subset); -1 for any other."""
    i = _stop_at(p, i, n, 1, &_STOP_STRICT[0])
    return i + 1 if i < n and p[i] == 34 else -1


cdef inline Py_ssize_t _text_end(const unsigned char* p, Py_ssize_t i, Py_ssize_t n,
                                 bint* ascii) noexcept nogil:
    """p[i] is the first byte inside a string: the index after its closing quote when the string
    has no escape or control byte (``ascii`` cleared when it holds a byte from 0x80); -1 else."""
    i = _stop_at(p, i, n, 1, &_STOP_STRICT[0])
    if i < n and p[i] >= 0x80:
        ascii[0] = False
        i = _stop_at(p, i, n, 0, &_STOP_TEXT[0])
    return i + 1 if i < n and p[i] == 34 else -1


cdef Py_ssize_t _plain_string(const unsigned char* p, Py_ssize_t i, Py_ssize_t n, int strict) noexcept nogil:
    """p[i] is a quote: the index after the string. ``strict``: only a string without escapes,
    control bytes or bytes from 0x80 (-1 for any other); S_ANY: any string (orjson judges it)."""
    if strict:
        return _strict_end(p, i + 1, n)
    return _string_end(p, i + 1, n, &_STOP_ANY[0], False)


cdef inline uint64_t _zero_bytes(uint64_t x) noexcept nogil:
    """The high bit of each byte of x that is zero is set (and maybe of bytes above one: then a
    lower byte is zero too, so "none" is exact)."""
    return (x - ONES) & ~x & HIGHS


cdef inline Py_ssize_t _plain_run8(const unsigned char* p, Py_ssize_t i, Py_ssize_t n,
                                   const unsigned char* stop) noexcept nogil:
    """Skip 8 bytes at a time while none of them is in ``stop`` (one of the three stop tables:
    quote and backslash always, control bytes for the strict and text ones, bytes from 0x80 for the
    strict one); the byte loop after it finds the exact stop."""
    cdef uint64_t x, hit
    cdef bint ctl = stop != &_STOP_ANY[0]
    cdef bint high = stop == &_STOP_STRICT[0]
    while i + 8 <= n:
        memcpy(&x, p + i, 8)
        hit = _zero_bytes(x ^ (ONES * 34)) | _zero_bytes(x ^ (ONES * 92))
        if ctl:
            hit |= (x - ONES * 32) & ~x & HIGHS  # a byte below 0x20 (exact when there is none)
        if high:
            hit |= x & HIGHS
        if hit:
            return i
        i += 8
    return i


cdef inline Py_ssize_t _string_end(const unsigned char* p, Py_ssize_t i, Py_ssize_t n,
                                   const unsigned char* stop, bint strict) noexcept nogil:
    while True:
        i = _plain_run8(p, i, n, stop)
        while i < n and not stop[p[i]]:
            i += 1
        if i >= n:
            return -1
        if p[i] == 34:
            return i + 1
        if strict:
            return -1
        i += 2  # an escape: orjson judges it


cdef inline Py_ssize_t _plain_number(const unsigned char* p, Py_ssize_t i, Py_ssize_t n) noexcept nogil:
    """A JSON number of at most MAX_NUMBER_LEN bytes (no exponent: nothing orjson could round or
    refuse); -1 otherwise."""
    cdef Py_ssize_t start = i
    if i < n and p[i] == 45:
        i += 1
    if i >= n or not _digit(p[i]):
        return -1
    if p[i] == 48:
        i += 1
    else:
        while i < n and _digit(p[i]):
            i += 1
    if i < n and p[i] == 46:
        i += 1
        if i >= n or not _digit(p[i]):
            return -1
        while i < n and _digit(p[i]):
            i += 1
    if i < n and (p[i] == 101 or p[i] == 69):
        return -1
    if i - start > MAX_NUMBER_LEN:
        return -1
    return i


cdef inline bint _word(const unsigned char* p, Py_ssize_t i, Py_ssize_t n, const char* w,
                       Py_ssize_t k) noexcept nogil:
    cdef Py_ssize_t j
    if i + k > n:
        return False
    for j in range(k):
        if p[i + j] != <unsigned char>w[j]:
            return False
    return True


cdef Py_ssize_t _plain_value(const unsigned char* p, Py_ssize_t i, Py_ssize_t n, int depth,
                             int strict) noexcept nogil:
    """The index after the JSON value starting at p[i], nesting up to MAX_PLAIN_DEPTH; -1 when it
    is not one. ``strict``: only the plain subset (see _plain_string/_plain_number), so orjson is
    sure to read it later; else the end of whatever value orjson will judge now."""
    cdef unsigned char c
    if i >= n or depth > MAX_PLAIN_DEPTH:
        return -1
    c = p[i]
    if c == 34:
        return _plain_string(p, i, n, strict)
    if c == 123 and strict and depth < MAX_PLAIN_DEPTH:
        return _strict_object(p, i, n, depth)
    if c == 123 or c == 91:  # { or [
        i = _ws(p, i + 1, n)
        if i < n and p[i] == c + 2:  # } or ]
            return i + 1
        while True:
            if c == 123:
                if i >= n or p[i] != 34:
                    return -1
                i = _plain_string(p, i, n, strict)
                if i < 0:
                    return -1
                i = _ws(p, i, n)
                if i >= n or p[i] != 58:
                    return -1
                i = _ws(p, i + 1, n)
            i = _plain_value(p, i, n, depth + 1, strict)
            if i < 0:
                return -1
            i = _ws(p, i, n)
            if i >= n:
                return -1
            if p[i] == 44:
                i = _ws(p, i + 1, n)
                continue
            if p[i] == c + 2:
                return i + 1
            return -1
    if c == 116:
        return i + 4 if _word(p, i, n, b"true", 4) else -1
    if c == 102:
        return i + 5 if _word(p, i, n, b"false", 5) else -1
    if c == 110:
        return i + 4 if _word(p, i, n, b"null", 4) else -1
    if strict:
        return _plain_number(p, i, n)
    cdef Py_ssize_t start = i
    while i < n and (_digit(p[i]) or p[i] == 45 or p[i] == 43 or p[i] == 46 or p[i] == 101 or p[i] == 69):
        i += 1
    return i if i > start else -1


cdef Py_ssize_t _strict_object(const unsigned char* p, Py_ssize_t i, Py_ssize_t n, int depth) noexcept nogil:
    """``_plain_value(p, i, n, depth, S_STRICT)`` of an object (p[i] is ``{``, depth below
    MAX_PLAIN_DEPTH so its members may be read): the flat members (strings, numbers) read here in
    one loop, nested values through ``_plain_value``; whitespace looked for only where the compact
    form has none. The same answer, in fewer calls."""
    cdef unsigned char c
    i = _ws(p, i + 1, n)
    if i < n and p[i] == 125:
        return i + 1
    while True:
        if i >= n or p[i] != 34:
            return -1
        i = _strict_end(p, i + 1, n)
        if i < 0 or i + 1 >= n:  # a colon and a value must follow
            return -1
        if p[i] == 58 and p[i + 1] == 34:  # the compact "key":"value"
            i = _strict_end(p, i + 2, n)
        else:
            if p[i] != 58:
                i = _ws(p, i, n)
                if i >= n or p[i] != 58:
                    return -1
            i = _ws(p, i + 1, n)
            if i >= n:
                return -1
            c = p[i]
            if c == 34:
                i = _strict_end(p, i + 1, n)
            elif _digit(c) or c == 45:
                i = _plain_number(p, i, n)
            else:
                i = _plain_value(p, i, n, depth + 1, S_STRICT)
        if i < 0 or i >= n:
            return -1
        c = p[i]
        if c == 44:
            i += 1
            if i < n and p[i] <= 32:
                i = _ws(p, i, n)
            continue
        if c <= 32:
            i = _ws(p, i, n)
            if i >= n:
                return -1
            c = p[i]
            if c == 44:
                i = _ws(p, i + 1, n)
                continue
        if c == 125:
            return i + 1
        return -1


cdef enum:
    F_NONE = 0
    F_ID = 1
    F_TYPE = 2
    F_TIMESTAMP = 4
    F_CID = 8
    F_REPLY = 16
    F_HEADERS = 32
    F_PAYLOAD = 64


cdef inline bint _key_is(const unsigned char* p, Py_ssize_t a, Py_ssize_t b, const char* k,
                         Py_ssize_t kl) noexcept nogil:
    return b - a == kl and _word(p, a, b, k, kl)


cdef int _key_of(const unsigned char* p, Py_ssize_t a, Py_ssize_t b) noexcept nogil:
    if _key_is(p, a, b, b"id", 2):
        return F_ID
    if _key_is(p, a, b, b"type", 4):
        return F_TYPE
    if _key_is(p, a, b, b"timestamp", 9):
        return F_TIMESTAMP
    if _key_is(p, a, b, b"headers", 7):
        return F_HEADERS
    if _key_is(p, a, b, b"payload", 7):
        return F_PAYLOAD
    if _key_is(p, a, b, b"correlationId", 13):
        return F_CID
    if _key_is(p, a, b, b"replyTo", 7):
        return F_REPLY
    return F_NONE


cdef inline object _text(const unsigned char* p, Py_ssize_t n, bint ascii):
    """The str of n bytes of string content: copied as they are when ``ascii`` (the walk saw no
    byte from 0x80), else decoded as UTF-8 (UnicodeDecodeError when they are not)."""
    if not ascii:
        return PyUnicode_DecodeUTF8(<const char*>p, n, NULL)
    s = PyUnicode_New(n, 127)
    memcpy(PyUnicode_1BYTE_DATA(s), p, n)
    return s


cdef inline object _plain_envelope(bytes body):
    return _plain_envelope_at(<const unsigned char*>PyBytes_AS_STRING(body), PyBytes_GET_SIZE(body))


cdef object _plain_envelope_at(const unsigned char* p, Py_ssize_t n):
    """The Envelope of a body (``n`` bytes at ``p``) in the plain form (the envelope keys once each,
    strings without escapes, headers of plain ASCII JSON, no long digit runs), its headers kept as
    checked bytes; None for anything else: then the general path decodes (and judges) it. A payload
    orjson refuses also goes to the general path, so the error is the one it gives. Keeps nothing
    of ``p``: a caller may hand it bytes it does not own as a bytes object (streamwire, through
    ``_C_DECODE_AT``, a record's body inside its chunk)."""
    cdef Py_ssize_t i, ka, kb, va, vb
    cdef Py_ssize_t sa[5]
    cdef Py_ssize_t sb[5]
    cdef Py_ssize_t ha = 0, hb = 0, pa = 0, pb = 0
    cdef int seen = 0, key, slot
    cdef bint lazy = False
    cdef bint ascii = True
    i = _ws(p, 0, n)
    if i >= n or p[i] != 123:
        return None
    i = _ws(p, i + 1, n)
    if i < n and p[i] == 125:
        return None  # {}: no type (the general path says so)
    while True:
        if i >= n or p[i] != 34:
            return None
        ka = i + 1
        i = _strict_end(p, ka, n)
        if i < 0:
            return None
        kb = i - 1
        key = _key_of(p, ka, kb)
        if key == F_NONE or seen & key:
            return None
        seen |= key
        i = _ws(p, i, n)
        if i >= n or p[i] != 58:
            return None
        va = _ws(p, i + 1, n)
        if key == F_HEADERS:
            if va >= n or p[va] != 123:
                return None
            vb = _strict_object(p, va, n, 1)
            ha = va
            hb = vb
        elif key == F_PAYLOAD:
            vb = _strict_object(p, va, n, 1) if va < n and p[va] == 123 else -1
            lazy = vb >= 0  # an object orjson is sure to read: kept as bytes (raw_payload)
            if not lazy:
                vb = _plain_value(p, va, n, 1, S_ANY)
            pa = va
            pb = vb
        else:
            if va >= n or p[va] != 34:
                return None
            vb = _text_end(p, va + 1, n, &ascii)  # no escapes: decoded as it is
            slot = 0 if key == F_ID else 1 if key == F_TYPE else 2 if key == F_TIMESTAMP else \
                3 if key == F_CID else 4
            sa[slot] = va + 1
            sb[slot] = vb - 1
        if vb < 0:
            return None
        i = _ws(p, vb, n)
        if i >= n:
            return None
        if p[i] == 44:
            i = _ws(p, i + 1, n)
            continue
        if p[i] != 125:
            return None
        break
    if _ws(p, i + 1, n) != n or not (seen & F_TYPE) or sb[1] == sa[1]:
        return None
    # a long integer somewhere: the general path reads it exactly. Only a payload read as "any
    # value" can hold one: the headers and a kept (strict) payload take numbers of <= 18 characters
    if seen & F_PAYLOAD and not lazy and _digit_run(p, n):
        return None
    cdef Envelope env = Envelope.__new__(Envelope)
    try:
        env.type = _utf8_cached(<const char*>p + sa[1], sb[1] - sa[1])
        env.id = _text(p + sa[0], sb[0] - sa[0], ascii) if seen & F_ID else ""
        env.timestamp = (_utf8_cached(<const char*>p + sa[2], sb[2] - sa[2])
                         if seen & F_TIMESTAMP else "")
        env.correlation_id = _text(p + sa[3], sb[3] - sa[3], ascii) if seen & F_CID else None
        env.reply_to = _text(p + sa[4], sb[4] - sa[4], ascii) if seen & F_REPLY else None
    except UnicodeDecodeError:
        return None
    if seen & F_HEADERS and hb - ha > 2:
        env._raw_headers = PyBytes_FromStringAndSize(<const char*>p + ha, hb - ha)
    else:
        env._headers = {}
    if seen & F_PAYLOAD:
        raw = PyBytes_FromStringAndSize(<const char*>p + pa, pb - pa)
        if lazy:
            env._raw_payload = raw  # orjson is sure to read it: decoded on first access
            return env
        try:
            env._payload = _loads(raw)
        except _JSONDecodeError:
            return None
    else:
        env._payload = {}
    return env


def decode_envelope(body):
    """Parse a body (Go's or .NET's). Raises EnvelopeError with reason ``not-json``,
    ``not-an-object``, ``bad-field`` or ``missing-type``."""
    if type(body) is bytes:
        fast = _plain_envelope(<bytes>body)
        if fast is not None:
            return fast
    try:
        doc = _loads(body)
    except _JSONDecodeError as exc:  # e.g. an integer beyond float64, which orjson refuses
        doc = _reparse(body, _FAILED) if _long_digits(body) else _FAILED
        if doc is _FAILED:
            raise EnvelopeError(f"message body is not JSON: {exc}", "not-json") from None
    except TypeError as exc:
        raise EnvelopeError(f"message body must be bytes, not {(<object>body).__class__.__qualname__}",
                            "not-json") from exc
    else:
        if _long_digits(body):  # orjson reads integers beyond 64 bits as floats: parse again, exactly
            doc = _reparse(body, doc)
    if type(doc) is not dict:
        raise EnvelopeError(f"message body is a JSON {_tname(doc)}, not an object", "not-an-object")
    cdef dict d = <dict>doc
    mid = _get(d, "id")
    mtype = _get(d, "type")
    ts = _get(d, "timestamp")
    cid = _get(d, "correlationId")
    rto = _get(d, "replyTo")
    _str_or_none("id", mid)
    _str_or_none("type", mtype)
    _str_or_none("timestamp", ts)
    _str_or_none("correlationId", cid)
    _str_or_none("replyTo", rto)
    if not mtype:
        raise EnvelopeError("envelope has no 'type'", "missing-type")
    headers = _get(d, "headers")
    if headers is None:
        headers = {}
    elif type(headers) is not dict:
        raise EnvelopeError(f"envelope field 'headers' must be an object, not {_tname(headers)}",
                            "bad-field")
    cdef PyObject* pp = PyDict_GetItem(d, "payload")
    cdef Envelope env = Envelope.__new__(Envelope)
    env.id = mid if mid is not None else ""
    env.type = mtype
    env.timestamp = ts if ts is not None else ""
    env.correlation_id = cid
    env.reply_to = rto
    env.headers = headers
    env.payload = <object>pp if pp != NULL else {}
    return env


#: ``_plain_envelope_at`` for compiled callers (streamwire): the same Envelope ``decode_envelope``
#: gives a plain body, or None (then ``decode_envelope`` of the body as bytes decides)
_C_DECODE_AT = PyCapsule_New(<void*>_plain_envelope_at, "mmate_fast._cy.envelope.decode_at", NULL)


__all__ = [
    "Envelope", "decode_envelope", "encode_envelope", "encode_json", "format_go_time",
    "format_timestamp", "new_id", "parse_timestamp", "utc_timestamp",
]
