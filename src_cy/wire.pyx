# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True
"""Compiled message templates; contract: mmate_fast/_cy/wire.pyi, twin: mmate_fast/_py/wire.py.

A ``MessageTemplate`` holds the constant parts of one message shape already encoded: the static
headers as sorted ``"key":value`` JSON fragments and as AMQP field-table entries, and the constant
property bytes. ``encode`` writes the body and the properties in one C pass each: the few
string-valued variable headers are sorted (insertion sort) and merged into the static fragments,
strings are escaped as Go's encoding/json does (same bytes as envelope.encode_json), the payload goes
through the compiled envelope.encode_json. A variable key that collides with a static one takes the
general path (encode_envelope + encode_properties on merged dicts).
"""
from collections.abc import Mapping

from mmate_fast._cy import envelope as _envmod
from mmate_fast._cy import frames as _frmod
from mmate_fast.errors import ContractError

from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_FromStringAndSize, PyBytes_GET_SIZE
from cpython.mem cimport PyMem_Malloc, PyMem_Realloc
from cpython.object cimport PyObject
from libc.stdint cimport uint8_t, uint16_t, uint32_t, uint64_t
from libc.string cimport memcpy
from posix.time cimport CLOCK_REALTIME, clock_gettime, timespec

cdef extern from "Python.h":
    const char* PyUnicode_AsUTF8AndSize(object s, Py_ssize_t* size) except NULL
    int PyUnicode_Compare(object a, object b) except? -1
    int PyDict_Contains(object d, object k) except -1
    bint PyUnicode_Check(object o)

_encode_json = _envmod.encode_json
_encode_envelope = _envmod.encode_envelope
_encode_properties = _frmod.encode_properties
_encode_table = _frmod.encode_table
_BasicProperties = _frmod.BasicProperties
_Typed = _frmod.Typed

DEF MAXV = 32

# --------------------------------------------------------------------------- scratch output buffer
cdef char* _scratch = NULL
cdef Py_ssize_t _scap = 0


cdef char* _reserve(Py_ssize_t need) except NULL:
    """The module's scratch buffer with at least ``need`` bytes (grown, never shrunk)."""
    global _scratch, _scap
    cdef char* np
    cdef Py_ssize_t cap
    if need > _scap:
        cap = need if need > 2 * _scap else 2 * _scap
        if cap < 1024:
            cap = 1024
        np = <char*>PyMem_Realloc(_scratch, cap)
        if np == NULL:
            raise MemoryError()
        _scratch = np
        _scap = cap
    return _scratch


# --------------------------------------------------------------------------- Go string escaping
cdef unsigned char _ESC[256]   # 0 plain, 1 \u00XX, 2 short escape, 3 \u00XX (<>&), 4 maybe U+2028/9
cdef char _SHORT[256]
cdef const char* _HEX = b"0123456789abcdef"


cdef void _init_tables() noexcept:
    cdef int i
    for i in range(256):
        _ESC[i] = 0
        _SHORT[i] = 0
    for i in range(32):
        _ESC[i] = 1
    for i, c in ((8, b"b"), (9, b"t"), (10, b"n"), (12, b"f"), (13, b"r"), (34, b'"'), (92, b"\\")):
        _ESC[i] = 2
        _SHORT[i] = ord(c)
    _ESC[60] = 1
    _ESC[62] = 1
    _ESC[38] = 1
    _ESC[0xE2] = 4


_init_tables()


cdef inline bint _plain8(uint64_t v) noexcept:
    """Whether none of the 8 bytes in ``v`` needs an escape or a look (``_ESC`` 0 for all: no byte
    below 0x20, none of ``"&<>\\``, none >= 0x80): the exact "has a byte < n" / "has a zero byte"
    word tests, so a word with such a byte is never taken as plain."""
    cdef uint64_t ones = 0x0101010101010101ULL
    cdef uint64_t high = 0x8080808080808080ULL
    cdef uint64_t t = v | ((v - ones * 0x20) & ~v)  # high bit: >= 0x80, or below 0x20
    cdef uint64_t x = v ^ (ones * 0x22)  # '"'
    t |= (x - ones) & ~x
    x = v ^ (ones * 0x26)  # '&'
    t |= (x - ones) & ~x
    x = v ^ (ones * 0x3C)  # '<'
    t |= (x - ones) & ~x
    x = v ^ (ones * 0x3E)  # '>'
    t |= (x - ones) & ~x
    x = v ^ (ones * 0x5C)  # '\\'
    t |= (x - ones) & ~x
    return (t & high) == 0


cdef inline char* _jstr(char* w, const unsigned char* s, Py_ssize_t n) noexcept:
    """Write ``"s"`` with Go's escapes at w (room for 6n+2 bytes); returns the end. Runs of 8 plain
    bytes (``_plain8``) are copied whole."""
    cdef Py_ssize_t i = 0
    cdef unsigned char c, e
    cdef uint64_t v
    w[0] = 34
    w += 1
    while i < n:
        if i + 8 <= n:
            memcpy(&v, s + i, 8)
            if _plain8(v):
                memcpy(w, &v, 8)
                w += 8
                i += 8
                continue
        c = s[i]
        e = _ESC[c]
        if e == 0:
            w[0] = c
            w += 1
        elif e == 2:
            w[0] = 92
            w[1] = _SHORT[c]
            w += 2
        elif e == 1:
            w[0] = 92
            w[1] = 117
            w[2] = 48
            w[3] = 48
            w[4] = _HEX[c >> 4]
            w[5] = _HEX[c & 15]
            w += 6
        else:  # 0xE2: U+2028 / U+2029 as \u2028 / \u2029, other characters raw
            if i + 2 < n and s[i + 1] == 0x80 and (s[i + 2] == 0xA8 or s[i + 2] == 0xA9):
                memcpy(w, b"\\u202", 5)
                w[5] = 56 if s[i + 2] == 0xA8 else 57
                w += 6
                i += 3
                continue
            w[0] = c
            w += 1
        i += 1
    w[0] = 34
    return w + 1


cdef const char* _utf8(object s, Py_ssize_t* n) except NULL:
    """UTF-8 of a str for the JSON body; surrogates raise ContractError as orjson's would."""
    try:
        return PyUnicode_AsUTF8AndSize(s, n)
    except UnicodeEncodeError:
        raise ContractError("cannot encode as Mmate JSON: str is not valid UTF-8: surrogates not allowed") from None


cdef inline int _need_str(str name, object value) except -1:
    if not PyUnicode_Check(value):
        raise ContractError(f"envelope {name} must be a str, not {type(value).__qualname__}")
    return 0


cdef inline int _sstr_prop(str name, object value, Py_ssize_t* n, const char** p) except -1:
    if not PyUnicode_Check(value):
        raise TypeError(f"property {name} must be str, got {type(value).__name__}")
    p[0] = PyUnicode_AsUTF8AndSize(value, n)
    if n[0] > 255:
        raise ValueError(f"property {name} is longer than 255 bytes")
    return 0


cdef inline char* _wsstr(char* w, const char* s, Py_ssize_t n) noexcept:
    w[0] = <uint8_t>n
    memcpy(w + 1, s, n)
    return w + 1 + n


cdef inline char* _wbytes(char* w, bytes b) noexcept:
    cdef Py_ssize_t n = PyBytes_GET_SIZE(b)
    memcpy(w, PyBytes_AS_STRING(b), n)
    return w + n


cdef inline void _wr32(char* p, uint32_t v) noexcept:
    p[0] = <char>(v >> 24)
    p[1] = <char>((v >> 16) & 0xFF)
    p[2] = <char>((v >> 8) & 0xFF)
    p[3] = <char>(v & 0xFF)


cdef bytes _sstr_const(str name, object value):
    if not isinstance(value, str):
        raise TypeError(f"property {name} must be str, got {type(value).__name__}")
    b = (<str>value).encode()
    if len(b) > 255:
        raise ValueError(f"property {name} is longer than 255 bytes")
    return bytes((len(b),)) + b


cdef bytes _octet_const(str name, object value):
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"property {name} must be int, got {type(value).__name__}")
    if not 0 <= value <= 255:
        raise ValueError(f"property {name} {value} outside 0..255")
    return bytes((value,))


_EMPTY_PAYLOAD = {}
_new_id = _envmod.new_id
_utc_timestamp = _envmod.utc_timestamp
cdef long _now_sec = -1
cdef object _now_str = None


cdef bytes _json_bytes(object v):
    if type(v) is not bytes:
        raise ContractError(f"payload_json must be bytes, not {type(v).__qualname__}")
    return <bytes>v


cdef object _own_typed(object v):
    """A Typed of the compiled frame codec (the twin's Typed is re-wrapped)."""
    if isinstance(v, _Typed) or not hasattr(v, "tag") or not hasattr(v, "value"):
        return v
    return _Typed(v.tag, v.value, go_safe=getattr(v, "go_safe", True))


cdef class MessageTemplate:
    """Pre-encoded constant parts of one message shape; see mmate_fast/_cy/wire.pyi."""

    cdef readonly str type_name
    cdef readonly object content_type, expiration, priority
    cdef readonly int delivery_mode
    cdef readonly dict static_headers
    cdef readonly dict amqp_headers
    cdef list _keys          # sorted static keys
    cdef list _frags         # b'"key":value' per sorted key
    cdef Py_ssize_t _frags_len
    cdef bytes _type_json    # b',"type":"..."'
    cdef bytes _tbl          # static field-table entries (amqp_headers order)
    cdef bytes _p_ct, _p_mid, _p_exp, _p_type
    cdef uint16_t _flags
    cdef object _w_cls, _w_writer   # the last class encode_message saw, and its PayloadWriter

    def __init__(self, static_headers, typed, *, type_name, content_type="application/json",
                 delivery_mode=2, expiration=None, priority=None):
        if not isinstance(static_headers, Mapping) or not isinstance(typed, Mapping):
            raise ContractError("static_headers and typed must be mappings")
        if not isinstance(type_name, str):
            raise ContractError(f"envelope type must be a str, not {type(type_name).__qualname__}")
        self.type_name = type_name
        self.content_type = content_type
        self.delivery_mode = delivery_mode
        self.expiration = expiration
        self.priority = priority
        self.static_headers = dict(static_headers)
        self.amqp_headers = dict(self.static_headers)
        for k, v in typed.items():
            self.amqp_headers[k] = _own_typed(v)
        for k in self.amqp_headers:
            if not isinstance(k, str):
                raise ContractError(f"header names must be str, not {type(k).__qualname__}")
        self._keys = sorted(self.static_headers)
        self._frags = [_encode_json(k) + b":" + _encode_json(self.static_headers[k]) for k in self._keys]
        self._frags_len = sum(len(f) + 1 for f in self._frags)
        self._type_json = b',"type":' + _encode_json(type_name)
        self._tbl = b"".join(_encode_table({k: v})[4:] for k, v in self.amqp_headers.items())
        self._flags = 0x8000 | 0x2000 | 0x1000 | 0x0080 | 0x0040 | 0x0020
        self._p_ct = _sstr_const("content_type", content_type)
        self._p_mid = _octet_const("delivery_mode", delivery_mode)
        if priority is not None:
            self._flags |= 0x0800
            self._p_mid += _octet_const("priority", priority)
        self._p_exp = b""
        if expiration is not None:
            self._flags |= 0x0100
            self._p_exp = _sstr_const("expiration", expiration)
        self._p_type = _sstr_const("type", type_name)

    def __repr__(self):
        return f"MessageTemplate(type_name={self.type_name!r}, static={len(self._keys)} headers)"

    def general(self, msg_id, timestamp, unix, correlation_id, reply_to, bint envelope_reply_to,
                variable, payload, payload_json=None):
        """The same result as ``encode`` by way of encode_envelope + encode_properties."""
        h = dict(self.static_headers)
        h.update(variable)
        body = _encode_envelope(msg_id, self.type_name, timestamp, correlation_id,
                                reply_to if envelope_reply_to else None, h,
                                payload if payload_json is None else _EMPTY_PAYLOAD)
        if payload_json is not None:  # the payload is the last member: splice its JSON in
            body = body[:len(body) - 3] + _json_bytes(payload_json) + b"}"
        a = dict(self.amqp_headers)
        a.update(variable)
        props = _encode_properties(_BasicProperties(
            content_type=self.content_type, delivery_mode=self.delivery_mode, headers=a,
            message_id=msg_id, correlation_id=correlation_id, type=self.type_name, timestamp=unix,
            reply_to=reply_to, expiration=self.expiration, priority=self.priority))
        return body, props

    def encode(self, msg_id, timestamp, unix, correlation_id, reply_to, bint envelope_reply_to,
               variable, payload, payload_json=None):
        """(body, encoded AMQP properties) of one message; see the .pyi."""
        return self._encode(msg_id, timestamp, unix, correlation_id, reply_to, envelope_reply_to,
                            variable, payload, payload_json)

    def encode_message(self, msg, int kind, correlation_id, reply_to, bint envelope_reply_to,
                       bint reply_to_header, writer_for, to_payload):
        """(message id, body, properties, correlation id, reply address, variable headers) of a
        typed message; None when it needs the general path (see the .pyi)."""
        global _now_sec, _now_str
        cdef timespec now
        cdef dict var
        if getattr(msg, "timestamp", None) is not None:
            return None
        msg_id = getattr(msg, "id", None) or _new_id()
        clock_gettime(CLOCK_REALTIME, &now)
        if now.tv_sec != _now_sec:
            _now_str = _utc_timestamp(now.tv_sec)
            _now_sec = now.tv_sec
        unix = now.tv_sec
        ts_str = _now_str
        corr = correlation_id or getattr(msg, "correlation_id", None) or None
        address = reply_to
        if not address and (kind == 1 or kind == 3):  # command, query: the message's reply address
            address = getattr(msg, "reply_to", "") or ""
        address = address or None
        var = {"x-message-id": msg_id, "message-id": msg_id, "timestamp": ts_str}
        if corr:
            var["x-correlation-id"] = corr
            var["correlation-id"] = corr
        if kind == 2:
            var["x-aggregate-id"] = str(getattr(msg, "aggregate_id", "") or "")
            var["x-sequence"] = str(getattr(msg, "sequence", 0) or 0)
        elif kind == 4:
            success = getattr(msg, "success", None)
            if success is None:
                return None
            var["x-success"] = "true" if success else "false"
        if reply_to_header and address:
            var["x-reply-to"] = address
        cls = type(msg)
        if cls is not self._w_cls:  # the class's compiled payload writer, asked for once per class
            w = writer_for(cls)
            self._w_writer = w if isinstance(w, PayloadWriter) else None
            self._w_cls = cls
        pj = None if self._w_writer is None else (<PayloadWriter>self._w_writer).encode_or_none(msg)
        body, props = self._encode(msg_id, ts_str, unix, corr, address, envelope_reply_to, var,
                                   to_payload(msg) if pj is None else None, pj)
        return msg_id, body, props, corr, address, var

    cdef tuple _encode(self, msg_id, timestamp, unix, correlation_id, reply_to, bint envelope_reply_to,
                       variable, payload, payload_json):
        cdef PyObject* vk[MAXV]
        cdef PyObject* vv[MAXV]
        cdef const char* kp[MAXV]
        cdef const char* vp[MAXV]
        cdef Py_ssize_t kn[MAXV]
        cdef Py_ssize_t vn[MAXV]
        cdef Py_ssize_t nv = 0, i, j, si, ns, need, n_id, n_ts, n_cid = 0, n_rt = 0
        cdef Py_ssize_t pn_cid = 0, pn_rt = 0, pn_mid
        cdef const char* p_id
        cdef const char* p_ts
        cdef const char* p_cid = NULL
        cdef const char* p_rt = NULL
        cdef const char* pp_cid = NULL
        cdef const char* pp_rt = NULL
        cdef const char* pp_mid
        cdef int idx[MAXV]
        cdef int t
        cdef Py_ssize_t tn
        cdef char* w
        cdef char* start
        cdef bint first = True, has_cid, has_rt, collides
        cdef uint16_t flags
        cdef uint64_t ts64
        cdef bytes frag, pl
        cdef dict var
        if type(variable) is dict:
            var = <dict>variable
        elif isinstance(variable, Mapping):
            var = dict(variable)
        else:
            raise ContractError(f"headers must be a mapping, not {type(variable).__qualname__}")
        collides = False
        for k, v in var.items():
            if not PyUnicode_Check(k):
                raise ContractError(f"header names must be str, not {type(k).__qualname__}")
            if not PyUnicode_Check(v):
                raise ContractError(f"header {k!r} must be a str here, not {type(v).__qualname__}")
            if PyDict_Contains(self.static_headers, k):
                collides = True
        if collides or len(var) > MAXV:
            return self.general(msg_id, timestamp, unix, correlation_id, reply_to, envelope_reply_to,
                                var, payload, payload_json)
        # ---- body: validate the envelope fields first, as encode_envelope does
        _need_str("id", msg_id)
        _need_str("timestamp", timestamp)
        has_cid = correlation_id is not None and correlation_id != ""
        if has_cid:
            _need_str("correlationId", correlation_id)
        env_rt = reply_to if envelope_reply_to else None
        has_rt = env_rt is not None and env_rt != ""
        if has_rt:
            _need_str("replyTo", env_rt)
        p_id = _utf8(msg_id, &n_id)
        p_ts = _utf8(timestamp, &n_ts)
        if has_cid:
            p_cid = _utf8(correlation_id, &n_cid)
        if has_rt:
            p_rt = _utf8(env_rt, &n_rt)
        need = 96 + PyBytes_GET_SIZE(self._type_json) + self._frags_len + 6 * (n_id + n_ts + n_cid + n_rt)
        for k, v in var.items():
            vk[nv] = <PyObject*>k
            vv[nv] = <PyObject*>v
            nv += 1
        for i in range(nv):
            kp[i] = _utf8(<object>vk[i], &kn[i])
            vp[i] = _utf8(<object>vv[i], &vn[i])
            need += 6 * (kn[i] + vn[i]) + 8
            idx[i] = i
        # insertion sort of the variable keys (code point order = Go's byte order of UTF-8); the
        # field table keeps the mapping's order
        for i in range(1, nv):
            t = idx[i]
            j = i - 1
            while j >= 0 and PyUnicode_Compare(<object>vk[idx[j]], <object>vk[t]) > 0:
                idx[j + 1] = idx[j]
                j -= 1
            idx[j + 1] = t
        if payload_json is not None:
            pl = _json_bytes(payload_json)
        else:
            pl = _encode_json(payload) if payload is not None else b"{}"
        need += PyBytes_GET_SIZE(pl)
        start = _reserve(need)
        w = start
        memcpy(w, b'{"id":', 6)
        w = _jstr(w + 6, <const unsigned char*>p_id, n_id)
        w = _wbytes(w, self._type_json)
        memcpy(w, b',"timestamp":', 13)
        w = _jstr(w + 13, <const unsigned char*>p_ts, n_ts)
        if has_cid:
            memcpy(w, b',"correlationId":', 17)
            w = _jstr(w + 17, <const unsigned char*>p_cid, n_cid)
        if has_rt:
            memcpy(w, b',"replyTo":', 11)
            w = _jstr(w + 11, <const unsigned char*>p_rt, n_rt)
        memcpy(w, b',"headers":{', 12)
        w += 12
        ns = len(self._keys)
        si = 0
        i = 0
        while si < ns or i < nv:
            if not first:
                w[0] = 44
                w += 1
            first = False
            if i >= nv or (si < ns and PyUnicode_Compare(self._keys[si], <object>vk[idx[i]]) < 0):
                frag = <bytes>self._frags[si]
                w = _wbytes(w, frag)
                si += 1
            else:
                t = idx[i]
                w = _jstr(w, <const unsigned char*>kp[t], kn[t])
                w[0] = 58
                w = _jstr(w + 1, <const unsigned char*>vp[t], vn[t])
                i += 1
        memcpy(w, b'},"payload":', 12)
        w = _wbytes(w + 12, pl)
        w[0] = 125
        w += 1
        body = PyBytes_FromStringAndSize(start, w - start)
        # ---- properties (encode_properties' checks, in its order)
        flags = self._flags
        if correlation_id is not None:
            flags |= 0x0400
            _sstr_prop("correlation_id", correlation_id, &pn_cid, &pp_cid)
        if reply_to is not None:
            flags |= 0x0200
            _sstr_prop("reply_to", reply_to, &pn_rt, &pp_rt)
        _sstr_prop("message_id", msg_id, &pn_mid, &pp_mid)
        if isinstance(unix, bool) or not isinstance(unix, int):
            raise TypeError(f"property timestamp must be int, got {type(unix).__name__}")
        if not 0 <= unix < (1 << 64):
            raise ValueError(f"property timestamp {unix} outside 0..2**64-1")
        ts64 = unix
        need = PyBytes_GET_SIZE(self._tbl)
        for i in range(nv):
            if kn[i] > 255:
                raise ValueError(f"field table key longer than 255 bytes: {(<object>vk[i])[:40]!r}...")
            need += 6 + kn[i] + vn[i]
        if need > 0xFFFFFFFF:
            raise ValueError("field table longer than 2**32-1 bytes")
        tn = need
        need += 2 + 4 + PyBytes_GET_SIZE(self._p_ct) + PyBytes_GET_SIZE(self._p_mid) + \
            PyBytes_GET_SIZE(self._p_exp) + PyBytes_GET_SIZE(self._p_type) + 1 + pn_mid + 8
        if pp_cid != NULL:
            need += 1 + pn_cid
        if pp_rt != NULL:
            need += 1 + pn_rt
        props = PyBytes_FromStringAndSize(NULL, need)
        start = PyBytes_AS_STRING(props)
        w = start
        w[0] = <char>(flags >> 8)
        w[1] = <char>(flags & 0xFF)
        w = _wbytes(w + 2, self._p_ct)
        _wr32(w, <uint32_t>tn)
        w = _wbytes(w + 4, self._tbl)
        for i in range(nv):
            w = _wsstr(w, kp[i], kn[i])
            w[0] = 83  # 'S'
            _wr32(w + 1, <uint32_t>vn[i])
            memcpy(w + 5, vp[i], vn[i])
            w += 5 + vn[i]
        w = _wbytes(w, self._p_mid)
        if pp_cid != NULL:
            w = _wsstr(w, pp_cid, pn_cid)
        if pp_rt != NULL:
            w = _wsstr(w, pp_rt, pn_rt)
        w = _wbytes(w, self._p_exp)
        w = _wsstr(w, pp_mid, pn_mid)
        _wr32(w, <uint32_t>(ts64 >> 32))
        _wr32(w + 4, <uint32_t>ts64)
        w = _wbytes(w + 8, self._p_type)
        assert w - start == need
        return body, props




# --------------------------------------------------------------------------- compiled payload plans
cdef extern from "Python.h":
    char* PyOS_double_to_string(double val, char format_code, int precision, int flags, int* ptype) except NULL
    long long PyLong_AsLongLongAndOverflow(object o, int* overflow) except? -1
    void PyMem_Free(void* p)

cdef extern from "math.h":
    bint isfinite(double x) nogil
    double fabs(double x) nogil
    double nearbyint(double x) nogil


cdef extern from "string.h":
    size_t strlen(const char* s) nogil


cdef Py_ssize_t _wint(char* w, long long v) noexcept:
    """Decimal digits of v at w (room for 21 bytes); returns their count."""
    cdef char tmp[24]
    cdef int k = 24
    cdef unsigned long long u = <unsigned long long>(-(v + 1)) + 1 if v < 0 else <unsigned long long>v
    while True:
        k -= 1
        tmp[k] = <char>(48 + u % 10)
        u //= 10
        if u == 0:
            break
    if v < 0:
        k -= 1
        tmp[k] = 45
    memcpy(w, tmp + k, 24 - k)
    return 24 - k


#: the powers of ten a double holds exactly (10**0 .. 10**22), as doubles and as integers up to 10**15
cdef double _P10[23]
cdef unsigned long long _I10[16]
for _k in range(23):
    _P10[_k] = float(10 ** _k)
for _k in range(16):
    _I10[_k] = 10 ** _k


cdef Py_ssize_t _short_float(char* w, double v) noexcept:
    """``PyOS_double_to_string(v, 'r', 0, 0)`` (repr without its ".0", Go's form in this range) at w
    (room for 24 bytes) for a finite v with 1e-4 <= |v| < 1e16 whose shortest form has at most 15
    significant digits: its length, else 0 (the caller then asks Python's dtoa, ~2k instructions).
    Why it is exact: the smallest k for which the integer m nearest |v| * 10**k (< 10**15) gives back
    |v| as m / 10**k (both exact doubles, the division correctly rounded: the double nearest the
    decimal m * 10**-k) names the shortest decimal that reads back as v; with at most 15 digits (DBL_DIG)
    no other decimal of that length reads back as v, so it is the one repr prints, in fixed notation
    in this range (no exponent, no trailing zeros, "0." before a fraction below 1)."""
    cdef double a = fabs(v), scaled, m = 0
    cdef int k, d, n = 0
    cdef unsigned long long im, ip, frac
    cdef char tmp[24]
    for k in range(23):
        scaled = a * _P10[k]
        if scaled >= 1e15:
            return 0
        m = nearbyint(scaled)
        if m / _P10[k] == a:
            break
    else:
        return 0
    im = <unsigned long long>m
    ip = im // _I10[k]
    frac = im - ip * _I10[k]
    if v < 0:
        w[n] = 45  # '-'
        n += 1
    d = 24
    while True:
        d -= 1
        tmp[d] = <char>(48 + ip % 10)
        ip //= 10
        if ip == 0:
            break
    memcpy(w + n, tmp + d, 24 - d)
    n += 24 - d
    if k:
        w[n] = 46  # '.'
        n += 1
        for d in range(k - 1, -1, -1):
            w[n + d] = <char>(48 + frac % 10)
            frac //= 10
        n += k
    return n


cdef struct Out:
    char* p          # the output: ``stack`` until it outgrows it, then a PyMem block of its own
    Py_ssize_t cap
    bint heap


cdef char* _room(Out* o, char* stack, Py_ssize_t used, Py_ssize_t extra) except NULL:
    """The writer's own buffer (never the module's scratch: values' Python code may run between
    writes, and so may another thread) with ``used + extra`` bytes; returns the write position."""
    cdef Py_ssize_t need = used + extra, cap
    cdef char* np
    if need > o.cap:
        cap = need if need > 2 * o.cap else 2 * o.cap
        if o.heap:
            np = <char*>PyMem_Realloc(o.p, cap)
        else:
            np = <char*>PyMem_Malloc(cap)
            if np != NULL:
                memcpy(np, stack, used)
        if np == NULL:
            raise MemoryError()
        o.p = np
        o.cap = cap
        o.heap = True
    return o.p + used


cdef class PayloadWriter:
    """A dataclass's top-level payload written as Go JSON straight from its attributes; see the .pyi."""

    cdef tuple _attrs, _fallbacks, _keys
    cdef bytes _flags      # per field: 1 omitempty, 2 leaf (taken as it is by the envelope codec)
    cdef object _general
    cdef Py_ssize_t _n
    cdef public bint disabled  # set when the class gets a hand-written codec: encode answers None

    def __init__(self, fields, general):
        rows = sorted(fields, key=lambda f: f[1])
        self._attrs = tuple(r[0] for r in rows)
        self._keys = tuple(_encode_json(r[1]) + b":" for r in rows)
        self._fallbacks = tuple(r[3] for r in rows)
        self._flags = bytes((1 if r[2] else 0) | (2 if r[4] else 0) for r in rows)
        self._general = general
        self._n = len(rows)

    def __repr__(self):
        return f"PayloadWriter({len(self._attrs)} fields)"

    def encode(self, msg):
        """Payload JSON bytes, or None when a value needs the general path (see the .pyi)."""
        return self.encode_or_none(msg)

    cdef object encode_or_none(self, object msg):
        if self.disabled:
            return None
        try:
            return self._write(msg)
        except Exception:
            return None

    cdef object _write(self, object msg):
        cdef char stack[1024]
        cdef Out o
        o.p = stack
        o.cap = 1024
        o.heap = False
        try:
            return self._write_into(msg, &o, stack)
        finally:
            if o.heap:
                PyMem_Free(o.p)

    cdef object _write_into(self, object msg, Out* o, char* stack):
        cdef Py_ssize_t i, used = 1, n = 0, kl
        cdef const unsigned char* fl = <const unsigned char*>PyBytes_AS_STRING(self._flags)
        cdef const char* s = NULL
        cdef char* w
        cdef char* r = NULL
        cdef char fbuf[24]
        cdef bytes key
        cdef bytes frag = None
        cdef bint first = True
        cdef int overflow, k
        cdef long long iv = 0
        cdef double dv
        cdef object t
        w = _room(o, stack, 0, 1)
        w[0] = 123
        for i in range(self._n):
            v = getattr(msg, <str>self._attrs[i])
            if fl[i] & 1:
                if not v:
                    continue
            elif not v:
                fb = self._fallbacks[i]
                if fb is not None:
                    v = getattr(msg, <str>fb)
            key = <bytes>self._keys[i]
            kl = PyBytes_GET_SIZE(key)
            t = type(v)
            # k: 1 str, 2 float text, 3 null, 4 true, 5 false, 6 int64, 0 a fragment from encode_json
            k = 0
            if t is str:
                k = 1
                s = _utf8(v, &n)
                n = 6 * n + 2
            elif t is float:
                dv = v
                if isfinite(dv) and 1e-4 <= fabs(dv) < 1e16:  # where repr and Go agree but for "x.0"
                    k = 2
            elif v is None:
                k = 3
            elif t is bool:
                k = 4 if v else 5
            elif t is int:
                iv = PyLong_AsLongLongAndOverflow(v, &overflow)
                if not overflow:
                    k = 6
            if k == 0:
                frag = _encode_json(v if fl[i] & 2 else self._general(v))
                n = PyBytes_GET_SIZE(frag)
            elif k == 2:
                n = _short_float(fbuf, dv)
                if n:
                    r = NULL
                else:
                    r = PyOS_double_to_string(dv, b'r', 0, 0, NULL)
                    n = <Py_ssize_t>strlen(r)
            elif k >= 3:
                n = 24
            w = _room(o, stack, used, kl + n + 1)
            if not first:
                w[0] = 44
                w += 1
                used += 1
            first = False
            memcpy(w, PyBytes_AS_STRING(key), kl)
            w += kl
            used += kl
            if k == 1:
                used += _jstr(w, <const unsigned char*>s, (n - 2) // 6) - w
            elif k == 2:
                if r is NULL:
                    memcpy(w, fbuf, n)
                else:
                    memcpy(w, r, n)
                    PyMem_Free(r)
                used += n
            elif k == 3:
                memcpy(w, b"null", 4)
                used += 4
            elif k == 4:
                memcpy(w, b"true", 4)
                used += 4
            elif k == 5:
                memcpy(w, b"false", 5)
                used += 5
            elif k == 6:
                used += _wint(w, iv)
            else:
                memcpy(w, PyBytes_AS_STRING(frag), n)
                used += n
        w = _room(o, stack, used, 1)
        w[0] = 125
        return PyBytes_FromStringAndSize(o.p, used + 1)


# --------------------------------------------------------------------------- one-call publish
cdef extern from "Python.h":
    int PyByteArray_Resize(object ba, Py_ssize_t n) except -1
    char* PyByteArray_AS_STRING(object ba)
    Py_ssize_t PyByteArray_GET_SIZE(object ba)
    int PyObject_IsTrue(object o) except -1

#: the per-message Mmate headers (outgoing._variable_headers) in their insertion order, which is the
#: AMQP table's order; the body's JSON object takes them in code point order (_SORTED)
_SLOT_KEYS = ("x-message-id", "message-id", "timestamp", "x-correlation-id", "correlation-id",
              "x-aggregate-id", "x-sequence", "x-success", "x-reply-to")
DEF NSLOT = 9
DEF S_XMID = 0
DEF S_MID = 1
DEF S_TS = 2
DEF S_XCID = 3
DEF S_CID = 4
DEF S_AGG = 5
DEF S_SEQ = 6
DEF S_SUCC = 7
DEF S_RT = 8
cdef int _SORTED[NSLOT]


def _init_sorted():
    for i, s in enumerate(sorted(range(NSLOT), key=lambda k: _SLOT_KEYS[k])):
        _SORTED[i] = s


_init_sorted()
_FRAME_MIN = 4096


from _bytebuf cimport _grow


cdef inline unsigned char* _frame_head(unsigned char* w, uint8_t kind, uint16_t channel,
                                       uint32_t size) noexcept:
    w[0] = kind
    w[1] = <uint8_t>(channel >> 8)
    w[2] = <uint8_t>(channel & 0xFF)
    _wr32(<char*>w + 3, size)
    return w + 7


cdef class PublishPlan:
    """Everything constant about publishing one message class with one set of options, and the
    one-call publish of an instance; see mmate_fast/_cy/wire.pyi."""

    cdef MessageTemplate _tpl
    cdef int _kind
    cdef readonly str exchange
    cdef readonly object routing_key      # the constant routing key, or None (routed by route_attr)
    cdef readonly bint mandatory
    cdef str _route_attr
    cdef str _rk_pre_s, _rk_suf_s
    cdef bytes _ex, _rk, _rk_pre, _rk_suf
    cdef object _lean                     # bytes: the lean profile's constant properties, or None
    cdef object _writer, _to_payload
    cdef bint _usable
    cdef Py_ssize_t _pos[NSLOT]
    cdef list _kjson                      # b'"key":' per slot
    cdef list _ktbl                       # short-string key + b"S" per slot

    def __init__(self, MessageTemplate template not None, int kind, str exchange not None,
                 routing_key=None, *, route_attr=None, str route_prefix="", str route_suffix="",
                 bint mandatory=False, writer=None, to_payload=None, lean_properties=None):
        if kind < 0 or kind > 4:
            raise ValueError(f"kind {kind} outside 0..4")
        self._tpl = template
        self._kind = kind
        self.exchange = exchange
        self._ex = exchange.encode()
        if len(self._ex) > 255:
            raise ValueError("exchange name is longer than 255 bytes (UTF-8)")
        self.routing_key = routing_key
        if routing_key is not None:
            if not isinstance(routing_key, str):
                raise TypeError(f"routing_key must be str, got {type(routing_key).__name__}")
            self._rk = (<str>routing_key).encode()
            if len(self._rk) > 255:
                raise ValueError("routing key is longer than 255 bytes (UTF-8)")
        elif not isinstance(route_attr, str):
            raise TypeError("a plan without a routing key needs route_attr (str)")
        self._route_attr = route_attr
        self._rk_pre_s = route_prefix
        self._rk_suf_s = route_suffix
        self._rk_pre = route_prefix.encode()
        self._rk_suf = route_suffix.encode()
        self.mandatory = mandatory
        self._writer = writer if isinstance(writer, PayloadWriter) else None
        self._to_payload = to_payload
        if lean_properties is not None and type(lean_properties) is not bytes:
            raise TypeError("lean_properties must be bytes")
        self._lean = lean_properties
        # a static header named like a per-message one: the general path merges them (variable wins)
        self._usable = not any(k in template.static_headers for k in _SLOT_KEYS)
        self._kjson = []
        self._ktbl = []
        for i, k in enumerate(_SLOT_KEYS):
            self._pos[i] = sum(1 for s in template._keys if s < k)
            self._kjson.append(_encode_json(k) + b":")
            self._ktbl.append(bytes((len(k),)) + k.encode() + b"S")

    def __repr__(self):
        return (f"PublishPlan(type={self._tpl.type_name!r}, kind={self._kind}, exchange={self.exchange!r}, "
                f"routing_key={self.routing_key!r})")

    def write(self, bytearray out not None, int channel, Py_ssize_t frame_max, msg, correlation_id=None,
              reply_to=None, routing_key=None):
        """Append basic.publish + content header + body frame(s) of ``msg`` to ``out``; its message
        id, or None (nothing written) when it needs the general path. See the .pyi."""
        if frame_max < _FRAME_MIN:
            raise ValueError(f"frame_max {frame_max} is below the AMQP minimum {_FRAME_MIN}")
        if channel < 0 or channel > 0xFFFF:
            raise ValueError(f"channel {channel} outside 0..65535")
        return self._run(msg, out, channel, frame_max, correlation_id, reply_to, routing_key)

    def encode(self, msg, correlation_id=None, reply_to=None, routing_key=None):
        """(message id, routing key, body, properties) of ``msg``, or None; see the .pyi."""
        return self._run(msg, None, 0, 0, correlation_id, reply_to, routing_key)

    cdef object _run(self, object msg, bytearray out, int channel, Py_ssize_t frame_max, object corr_in,
                     object rt_in, object rk_in):
        global _now_sec, _now_str
        cdef MessageTemplate tpl = self._tpl
        cdef timespec now
        cdef const char* vp[NSLOT]
        cdef Py_ssize_t vn[NSLOT]
        cdef bint present[NSLOT]
        cdef char seqbuf[24]
        cdef const char* p_rk = NULL
        cdef Py_ssize_t n_rk = 0, n_pl, need, size, si, ns, tn, plen, chunk, nframes, method_size
        cdef Py_ssize_t total, start_b, part, k, s
        cdef int overflow
        cdef long long iv
        cdef uint64_t ts64
        cdef char* w
        cdef char* body
        cdef unsigned char* o
        cdef bint first = True
        cdef bytes pl, frag
        cdef int kind = self._kind
        if not self._usable:
            return None
        for s in range(NSLOT):
            present[s] = False
        # ---- the per-message values (Python code may run: nothing written yet)
        try:
            if getattr(msg, "timestamp", None) is not None:
                return None
            msg_id = getattr(msg, "id", None) or _new_id()
            if not PyUnicode_Check(msg_id):
                return None
            clock_gettime(CLOCK_REALTIME, &now)
            if now.tv_sec != _now_sec:
                _now_str = _utc_timestamp(now.tv_sec)
                _now_sec = now.tv_sec
            ts64 = <uint64_t>now.tv_sec
            ts_str = _now_str
            # the per-call correlation id / reply address win over the message's (as build's options)
            corr = corr_in or getattr(msg, "correlation_id", None) or None
            if corr is not None and not PyUnicode_Check(corr):
                return None
            address = rt_in or None
            if address is None and (kind == 1 or kind == 3):  # command, query: the message's address
                address = getattr(msg, "reply_to", "") or None
            if address is not None and not PyUnicode_Check(address):
                return None
            agg = seq = succ = None
            if kind == 2:
                agg = getattr(msg, "aggregate_id", "") or ""
                if not PyUnicode_Check(agg):
                    return None
                seq = getattr(msg, "sequence", 0) or 0
                if type(seq) is int:
                    iv = PyLong_AsLongLongAndOverflow(seq, &overflow)
                    if overflow:
                        seq = str(seq)
                    else:
                        vn[S_SEQ] = _wint(seqbuf, iv)
                        vp[S_SEQ] = seqbuf
                        seq = None
                else:
                    seq = str(seq)
                if seq is not None:
                    vp[S_SEQ] = _utf8(seq, &vn[S_SEQ])
                present[S_AGG] = present[S_SEQ] = True
            elif kind == 4:
                succ = getattr(msg, "success", None)
                if succ is None:
                    return None
                if PyObject_IsTrue(succ):
                    vp[S_SUCC] = b"true"
                    vn[S_SUCC] = 4
                else:
                    vp[S_SUCC] = b"false"
                    vn[S_SUCC] = 5
                present[S_SUCC] = True
            if rk_in is not None:  # a per-call routing key (e.g. a reply's: the requester's queue)
                rkv = rk_in
                if not PyUnicode_Check(rkv):
                    return None
            elif self._rk is None:
                rkv = agg if self._route_attr == "aggregate_id" and agg is not None else \
                    (getattr(msg, self._route_attr, "") or "")
                if not PyUnicode_Check(rkv):
                    return None
            else:
                rkv = None
            pl = None
            if self._writer is not None:
                pl = (<PayloadWriter>self._writer).encode_or_none(msg)
            if pl is None:
                pl = _encode_json(self._to_payload(msg))
            # UTF-8 of every string (surrogates: the general path raises the error)
            vp[S_XMID] = _utf8(msg_id, &vn[S_XMID])
            vp[S_MID] = vp[S_XMID]
            vn[S_MID] = vn[S_XMID]
            present[S_XMID] = present[S_MID] = present[S_TS] = True
            vp[S_TS] = _utf8(ts_str, &vn[S_TS])
            if corr is not None:
                vp[S_XCID] = _utf8(corr, &vn[S_XCID])
                vp[S_CID] = vp[S_XCID]
                vn[S_CID] = vn[S_XCID]
                present[S_XCID] = present[S_CID] = True
            if address is not None:
                vp[S_RT] = _utf8(address, &vn[S_RT])
                present[S_RT] = True
            if agg is not None:
                vp[S_AGG] = _utf8(agg, &vn[S_AGG])
            if rkv is not None:
                p_rk = _utf8(rkv, &n_rk)
        except Exception:
            return None
        # ---- what the broker would refuse: the general path raises its named error
        if vn[S_XMID] > 255 or (present[S_XCID] and vn[S_XCID] > 255) or (present[S_RT] and vn[S_RT] > 255):
            return None
        if rk_in is not None:
            pass  # n_rk: the per-call key's own length
        elif self._rk is None:
            n_rk += PyBytes_GET_SIZE(self._rk_pre) + PyBytes_GET_SIZE(self._rk_suf)
        else:
            n_rk = PyBytes_GET_SIZE(self._rk)
        if n_rk > 255:
            return None
        # ---- the body, in the module's scratch buffer (no Python code runs from here on)
        n_pl = PyBytes_GET_SIZE(pl)
        need = 128 + PyBytes_GET_SIZE(tpl._type_json) + tpl._frags_len + n_pl
        for s in range(NSLOT):
            if present[s]:
                need += PyBytes_GET_SIZE(<bytes>self._kjson[s]) + 6 * vn[s] + 4
        need += 6 * (vn[S_XMID] + vn[S_TS]) + 17 + 11
        if present[S_XCID]:
            need += 6 * vn[S_XCID]
        if present[S_RT]:
            need += 6 * vn[S_RT]
        body = _reserve(need)
        w = body
        memcpy(w, b'{"id":', 6)
        w = _jstr(w + 6, <const unsigned char*>vp[S_XMID], vn[S_XMID])
        w = _wbytes(w, tpl._type_json)
        memcpy(w, b',"timestamp":', 13)
        w = _jstr(w + 13, <const unsigned char*>vp[S_TS], vn[S_TS])
        if present[S_XCID]:
            memcpy(w, b',"correlationId":', 17)
            w = _jstr(w + 17, <const unsigned char*>vp[S_XCID], vn[S_XCID])
        if present[S_RT]:
            memcpy(w, b',"replyTo":', 11)
            w = _jstr(w + 11, <const unsigned char*>vp[S_RT], vn[S_RT])
        memcpy(w, b',"headers":{', 12)
        w += 12
        ns = len(tpl._keys)
        si = 0
        for k in range(NSLOT):
            s = _SORTED[k]
            if not present[s]:
                continue
            while si < self._pos[s]:
                if not first:
                    w[0] = 44
                    w += 1
                first = False
                w = _wbytes(w, <bytes>tpl._frags[si])
                si += 1
            if not first:
                w[0] = 44
                w += 1
            first = False
            w = _wbytes(w, <bytes>self._kjson[s])
            w = _jstr(w, <const unsigned char*>vp[s], vn[s])
        while si < ns:
            if not first:
                w[0] = 44
                w += 1
            first = False
            w = _wbytes(w, <bytes>tpl._frags[si])
            si += 1
        memcpy(w, b'},"payload":', 12)
        w += 12
        memcpy(w, PyBytes_AS_STRING(pl), n_pl)
        w += n_pl
        w[0] = 125
        w += 1
        size = w - body
        # ---- the properties' size
        if self._lean is not None:
            plen = PyBytes_GET_SIZE(<bytes>self._lean)
            tn = 0
        else:
            tn = PyBytes_GET_SIZE(tpl._tbl)
            for s in range(NSLOT):
                if present[s]:
                    tn += PyBytes_GET_SIZE(<bytes>self._ktbl[s]) + 4 + vn[s]
            plen = 2 + PyBytes_GET_SIZE(tpl._p_ct) + 4 + tn + PyBytes_GET_SIZE(tpl._p_mid) + \
                PyBytes_GET_SIZE(tpl._p_exp) + 1 + vn[S_XMID] + 8 + PyBytes_GET_SIZE(tpl._p_type)
            if present[S_XCID]:
                plen += 1 + vn[S_XCID]
            if present[S_RT]:
                plen += 1 + vn[S_RT]
        if out is None:
            body_b = PyBytes_FromStringAndSize(body, size)
            props = PyBytes_FromStringAndSize(NULL, plen)
            self._props(PyBytes_AS_STRING(props), plen, tn, vp, vn, present, ts64)
            if rk_in is not None:
                rk = rkv
            elif self._rk is not None:
                rk = self.routing_key
            else:
                rk = self._rk_pre_s + rkv + self._rk_suf_s
            return msg_id, rk, body_b, props
        # ---- frames: basic.publish, content header (properties written in place), body frame(s)
        chunk = frame_max - 8
        nframes = (size + chunk - 1) // chunk
        method_size = 4 + 2 + 1 + PyBytes_GET_SIZE(self._ex) + 1 + n_rk + 1
        total = (method_size + 8) + (12 + plen + 8) + size + 8 * nframes
        o = _grow(out, total)
        o = _frame_head(o, 1, <uint16_t>channel, <uint32_t>method_size)
        o[0] = 0; o[1] = 60; o[2] = 0; o[3] = 40; o[4] = 0; o[5] = 0
        o[6] = <uint8_t>PyBytes_GET_SIZE(self._ex)
        o = <unsigned char*>_wbytes(<char*>o + 7, self._ex)
        o[0] = <uint8_t>n_rk
        o += 1
        if rk_in is not None:
            memcpy(o, p_rk, n_rk)
            o += n_rk
        elif self._rk is not None:
            o = <unsigned char*>_wbytes(<char*>o, self._rk)
        else:
            o = <unsigned char*>_wbytes(<char*>o, self._rk_pre)
            memcpy(o, p_rk, n_rk - PyBytes_GET_SIZE(self._rk_pre) - PyBytes_GET_SIZE(self._rk_suf))
            o += n_rk - PyBytes_GET_SIZE(self._rk_pre) - PyBytes_GET_SIZE(self._rk_suf)
            o = <unsigned char*>_wbytes(<char*>o, self._rk_suf)
        o[0] = 1 if self.mandatory else 0
        o[1] = 0xCE
        o = _frame_head(o + 2, 2, <uint16_t>channel, <uint32_t>(12 + plen))
        o[0] = 0; o[1] = 60; o[2] = 0; o[3] = 0
        _wr32(<char*>o + 4, <uint32_t>(<uint64_t>size >> 32))
        _wr32(<char*>o + 8, <uint32_t>size)
        self._props(<char*>o + 12, plen, tn, vp, vn, present, ts64)
        o[12 + plen] = 0xCE
        o += 13 + plen
        start_b = 0
        while start_b < size:
            part = size - start_b
            if part > chunk:
                part = chunk
            o = _frame_head(o, 3, <uint16_t>channel, <uint32_t>part)
            memcpy(o, body + start_b, part)
            o[part] = 0xCE
            o += part + 1
            start_b += part
        return msg_id

    cdef void _props(self, char* w, Py_ssize_t plen, Py_ssize_t tn, const char** vp, Py_ssize_t* vn,
                     bint* present, uint64_t ts64) noexcept:
        """The encoded basic properties (``plen`` bytes, table of ``tn`` bytes) at w."""
        cdef MessageTemplate tpl = self._tpl
        cdef uint16_t flags
        cdef int s
        cdef bytes kt
        if self._lean is not None:
            memcpy(w, PyBytes_AS_STRING(<bytes>self._lean), plen)
            return
        flags = tpl._flags
        if present[S_XCID]:
            flags |= 0x0400
        if present[S_RT]:
            flags |= 0x0200
        w[0] = <char>(flags >> 8)
        w[1] = <char>(flags & 0xFF)
        w = _wbytes(w + 2, tpl._p_ct)
        _wr32(w, <uint32_t>tn)
        w = _wbytes(w + 4, tpl._tbl)
        for s in range(NSLOT):
            if present[s]:
                kt = <bytes>self._ktbl[s]
                w = _wbytes(w, kt)
                _wr32(w, <uint32_t>vn[s])
                memcpy(w + 4, vp[s], vn[s])
                w += 4 + vn[s]
        w = _wbytes(w, tpl._p_mid)
        if present[S_XCID]:
            w = _wsstr(w, vp[S_XCID], vn[S_XCID])
        if present[S_RT]:
            w = _wsstr(w, vp[S_RT], vn[S_RT])
        w = _wbytes(w, tpl._p_exp)
        w = _wsstr(w, vp[S_XMID], vn[S_XMID])
        _wr32(w, <uint32_t>(ts64 >> 32))
        _wr32(w + 4, <uint32_t>ts64)
        w = _wbytes(w + 8, tpl._p_type)


cdef class PublishSink:
    """One open channel's place in its connection's write buffer, for the one-call publish: the
    channel makes it (``publish_sink()``) and clears ``open`` when it closes or turns on confirms.
    ``conn`` is read as the AMQP client's Connection: ``_wbuf`` (the bytearray of this loop turn),
    ``_flush_pending`` and ``_schedule_flush()``; see the .pyi."""

    cdef object _conn
    cdef readonly int channel_id
    cdef readonly Py_ssize_t frame_max
    cdef public bint open

    def __init__(self, conn, int channel_id, Py_ssize_t frame_max):
        if frame_max < _FRAME_MIN:
            raise ValueError(f"frame_max {frame_max} is below the AMQP minimum {_FRAME_MIN}")
        if channel_id < 0 or channel_id > 0xFFFF:
            raise ValueError(f"channel {channel_id} outside 0..65535")
        self._conn = conn
        self.channel_id = channel_id
        self.frame_max = frame_max
        self.open = True

    def __repr__(self):
        return f"PublishSink(channel={self.channel_id}, open={self.open})"

    def write(self, PublishPlan plan not None, msg, correlation_id=None, reply_to=None, routing_key=None):
        """``plan.write`` into the connection's write buffer, a flush scheduled; the message id, or
        None when nothing was written (sink closed, or the message needs the general path)."""
        if not self.open:
            return None
        conn = self._conn
        r = plan._run(msg, <bytearray?>conn._wbuf, self.channel_id, self.frame_max, correlation_id, reply_to,
                      routing_key)
        if r is not None and not conn._flush_pending:
            conn._schedule_flush()
        return r


__all__ = ["MessageTemplate", "PayloadWriter", "PublishPlan", "PublishSink"]
