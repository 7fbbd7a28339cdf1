# cython: language_level=3
"""Compiled RabbitMQ Streams wire for Mmate messages (twin: mmate_fast/_py/streamwire.py).

Contract: mmate_fast/_cy/streamwire.pyi. ``append_message`` turns our AMQP 0-9-1 publish (pre-encoded
basic properties + envelope body) into the AMQP 1.0 message RabbitMQ stores for it in a stream, and
appends it as a PublishedMessage to a Publish frame, in one pass over the bytes, writing straight into
the frame's bytearray.
"""
from cpython.bytearray cimport PyByteArray_AS_STRING, PyByteArray_GET_SIZE, PyByteArray_Resize
from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_FromStringAndSize, PyBytes_GET_SIZE
from cpython.pycapsule cimport PyCapsule_GetPointer
from cpython.unicode cimport PyUnicode_AsUTF8AndSize
from libc.stdint cimport int8_t, int32_t, int64_t, uint8_t, uint16_t, uint32_t, uint64_t
from libc.string cimport memcpy, memmove

from mmate_fast.errors import StreamProtocolError

CHUNK_HEADER_SIZE = 48

ctypedef unsigned char uchar
ctypedef object (*_decode_at_t)(const uchar*, Py_ssize_t)

# the compiled envelope decoder and its C entry on (pointer, length): dispatch_chunk reads a record's
# body where it lies in the chunk (no bytes object) when it is handed that decoder
cdef object _envelope_decode = None
cdef _decode_at_t _envelope_at = NULL
try:
    from mmate_fast._cy import envelope as _cy_envelope
    _envelope_at = <_decode_at_t>PyCapsule_GetPointer(_cy_envelope._C_DECODE_AT,
                                                      "mmate_fast._cy.envelope.decode_at")
    _envelope_decode = _cy_envelope.decode_envelope
except (ImportError, AttributeError):
    pass


cdef inline uint16_t _u16(const uchar* p) noexcept nogil:
    return (<uint16_t>p[0] << 8) | p[1]


cdef inline uint32_t _u32(const uchar* p) noexcept nogil:
    return (<uint32_t>p[0] << 24) | (<uint32_t>p[1] << 16) | (<uint32_t>p[2] << 8) | p[3]


cdef inline uint64_t _u64(const uchar* p) noexcept nogil:
    return (<uint64_t>_u32(p) << 32) | _u32(p + 4)


cdef inline uchar* _put32(uchar* q, uint32_t v) noexcept nogil:
    q[0] = v >> 24
    q[1] = (v >> 16) & 0xFF
    q[2] = (v >> 8) & 0xFF
    q[3] = v & 0xFF
    return q + 4


cdef inline uchar* _put64(uchar* q, uint64_t v) noexcept nogil:
    _put32(q, <uint32_t>(v >> 32))
    _put32(q + 4, <uint32_t>v)
    return q + 8


cdef inline uchar* _str(uchar* q, uchar code8, uchar code32, const uchar* src, Py_ssize_t n) noexcept nogil:
    if n < 256:
        q[0] = code8
        q[1] = <uchar>n
        q += 2
    else:
        q[0] = code32
        q = _put32(q + 1, <uint32_t>n)
    memcpy(q, src, n)
    return q + n


cdef inline uchar* _lit(uchar* q, const char* s, Py_ssize_t n) noexcept nogil:
    memcpy(q, s, n)
    return q + n


cdef inline uchar* _finish(uchar* start, uchar* q, uchar code8, uchar code32, uint32_t count) noexcept nogil:
    """Close a compound (list/map) whose 9 header bytes were reserved at ``start``: the 8-bit form
    when it fits (content moved back), else the 32-bit one."""
    cdef Py_ssize_t content = q - (start + 9)
    if content + 1 <= 255 and count <= 255:
        start[0] = code8
        start[1] = <uchar>(content + 1)
        start[2] = <uchar>count
        memmove(start + 3, start + 9, content)
        return start + 3 + content
    start[0] = code32
    _put32(start + 1, <uint32_t>(content + 4))
    _put32(start + 5, count)
    return q


cdef struct Span:
    const uchar* p
    Py_ssize_t n
    bint present



cdef int _need(Py_ssize_t pos, Py_ssize_t k, Py_ssize_t end) except -1:
    if k < 0 or pos + k > end:
        raise ValueError("AMQP basic properties end before their fields do")
    return 0


cdef Py_ssize_t _shortstr(const uchar* s, Py_ssize_t pos, Py_ssize_t end, Span* out) except -1:
    _need(pos, 1, end)
    cdef Py_ssize_t n = s[pos]
    _need(pos + 1, n, end)
    out.p = s + pos + 1
    out.n = n
    out.present = 1
    return pos + 1 + n


cdef uchar* _int(uchar* q, int32_t v) noexcept nogil:
    if -128 <= v <= 127:
        q[0] = 0x54
        q[1] = <uchar>(<int8_t>v)
        return q + 2
    q[0] = 0x71
    return _put32(q + 1, <uint32_t>v)


cdef uchar* _long(uchar* q, int64_t v) noexcept nogil:
    if -128 <= v <= 127:
        q[0] = 0x55
        q[1] = <uchar>(<int8_t>v)
        return q + 2
    q[0] = 0x81
    return _put64(q + 1, <uint64_t>v)


cdef uchar* _uint(uchar* q, uint32_t v) noexcept nogil:
    if v == 0:
        q[0] = 0x43
        return q + 1
    if v < 256:
        q[0] = 0x52
        q[1] = <uchar>v
        return q + 2
    q[0] = 0x70
    return _put32(q + 1, v)


cdef uchar* _table(const uchar* s, Py_ssize_t pos, Py_ssize_t end, uchar* q, uint32_t* count) except NULL:
    """The 0-9-1 field table content s[pos:end] as AMQP 1.0 map items (RabbitMQ's mapping; void,
    decimal, nested tables and arrays dropped as it drops them)."""
    cdef Py_ssize_t nlen, vlen
    cdef const uchar* name
    cdef uchar t
    cdef uchar* mark
    while pos < end:
        _need(pos, 1, end)
        nlen = s[pos]
        _need(pos + 1, nlen + 1, end)
        name = s + pos + 1
        pos += 1 + nlen
        t = s[pos]
        pos += 1
        mark = q
        q = _str(q, 0xA1, 0xB1, name, nlen)
        if t == 0x53:  # S
            _need(pos, 4, end)
            vlen = _u32(s + pos)
            _need(pos + 4, vlen, end)
            q = _str(q, 0xA1, 0xB1, s + pos + 4, vlen)
            pos += 4 + vlen
        elif t == 0x74:  # t
            _need(pos, 1, end)
            q[0] = 0x56
            q[1] = 1 if s[pos] else 0
            q += 2
            pos += 1
        elif t == 0x62 or t == 0x42:  # b, B
            _need(pos, 1, end)
            q[0] = 0x51 if t == 0x62 else 0x50
            q[1] = s[pos]
            q += 2
            pos += 1
        elif t == 0x73 or t == 0x75:  # s, u
            _need(pos, 2, end)
            q[0] = 0x61 if t == 0x73 else 0x60
            q[1] = s[pos]
            q[2] = s[pos + 1]
            q += 3
            pos += 2
        elif t == 0x49:  # I
            _need(pos, 4, end)
            q = _int(q, <int32_t>_u32(s + pos))
            pos += 4
        elif t == 0x69:  # i
            _need(pos, 4, end)
            q = _uint(q, _u32(s + pos))
            pos += 4
        elif t == 0x6C:  # l
            _need(pos, 8, end)
            q = _long(q, <int64_t>_u64(s + pos))
            pos += 8
        elif t == 0x66:  # f
            _need(pos, 4, end)
            q[0] = 0x72
            memcpy(q + 1, s + pos, 4)
            q += 5
            pos += 4
        elif t == 0x64:  # d
            _need(pos, 8, end)
            q[0] = 0x82
            memcpy(q + 1, s + pos, 8)
            q += 9
            pos += 8
        elif t == 0x78:  # x
            _need(pos, 4, end)
            vlen = _u32(s + pos)
            _need(pos + 4, vlen, end)
            q = _str(q, 0xA0, 0xB0, s + pos + 4, vlen)
            pos += 4 + vlen
        elif t == 0x54:  # T seconds -> ms
            _need(pos, 8, end)
            q[0] = 0x83
            q = _put64(q + 1, _u64(s + pos) * 1000)
            pos += 8
        elif t == 0x56:  # V
            q = mark
            continue
        elif t == 0x44:  # D
            _need(pos, 5, end)
            pos += 5
            q = mark
            continue
        elif t == 0x46 or t == 0x41:  # F, A
            _need(pos, 4, end)
            vlen = _u32(s + pos)
            _need(pos + 4, vlen, end)
            pos += 4 + vlen
            q = mark
            continue
        else:
            raise ValueError(f"AMQP field table value of unknown type {chr(t)!r}")
        count[0] += 2
    return q


cdef Py_ssize_t _encode(bytes properties, bytes body, str exchange, str routing_key, uchar* out) except -1:
    """Write the AMQP 1.0 message at ``out`` (room: see _bound); its length."""
    cdef const uchar* s = <const uchar*>PyBytes_AS_STRING(properties)
    cdef Py_ssize_t end = PyBytes_GET_SIZE(properties)
    cdef Py_ssize_t pos = 2, tstart = 0, tend = 0, exl, rkl
    cdef uint16_t flags
    cdef Span ctype, cenc, corr, reply, expir, mid, typ, uid, app, clus
    cdef uchar dmode = 0, prio = 0
    cdef bint has_dmode = 0, has_prio = 0, has_ts = 0, has_table = 0
    cdef uint64_t ts = 0
    cdef uint32_t count
    cdef uchar* q = out
    cdef uchar* start
    cdef const char* ex = PyUnicode_AsUTF8AndSize(exchange, &exl)
    cdef const char* rk = PyUnicode_AsUTF8AndSize(routing_key, &rkl)
    ctype.present = cenc.present = corr.present = reply.present = expir.present = 0
    mid.present = typ.present = uid.present = app.present = clus.present = 0
    _need(0, 2, end)
    flags = _u16(s)
    if flags & 1:
        raise ValueError("AMQP basic properties with a continuation flag are not supported")
    if flags & 0x8000:
        pos = _shortstr(s, pos, end, &ctype)
    if flags & 0x4000:
        pos = _shortstr(s, pos, end, &cenc)
    if flags & 0x2000:
        _need(pos, 4, end)
        tstart = pos + 4
        tend = tstart + _u32(s + pos)
        _need(tstart, tend - tstart, end)
        pos = tend
        has_table = 1
    if flags & 0x1000:
        _need(pos, 1, end)
        dmode = s[pos]
        has_dmode = 1
        pos += 1
    if flags & 0x0800:
        _need(pos, 1, end)
        prio = s[pos]
        has_prio = 1
        pos += 1
    if flags & 0x0400:
        pos = _shortstr(s, pos, end, &corr)
    if flags & 0x0200:
        pos = _shortstr(s, pos, end, &reply)
    if flags & 0x0100:
        pos = _shortstr(s, pos, end, &expir)
    if flags & 0x0080:
        pos = _shortstr(s, pos, end, &mid)
    if flags & 0x0040:
        _need(pos, 8, end)
        ts = _u64(s + pos)
        has_ts = 1
        pos += 8
    if flags & 0x0020:
        pos = _shortstr(s, pos, end, &typ)
    if flags & 0x0010:
        pos = _shortstr(s, pos, end, &uid)
    if flags & 0x0008:
        pos = _shortstr(s, pos, end, &app)
    if flags & 0x0004:
        pos = _shortstr(s, pos, end, &clus)

    # message annotations
    q = _lit(q, b"\x00\x53\x72", 3)
    start = q
    q += 9
    q = _lit(q, b"\xa3\x0dx-routing-key", 15)
    q = _str(q, 0xA1, 0xB1, <const uchar*>rk, rkl)
    q = _lit(q, b"\xa3\x0ax-exchange", 12)
    q = _str(q, 0xA1, 0xB1, <const uchar*>ex, exl)
    count = 4
    if has_prio:
        q = _lit(q, b"\xa3\x10x-basic-priority\x50", 19)
        q[0] = prio
        q += 1
        count += 2
    if has_dmode:
        q = _lit(q, b"\xa3\x15x-basic-delivery-mode\x50", 24)
        q[0] = dmode
        q += 1
        count += 2
    if expir.present:
        q = _lit(q, b"\xa3\x12x-basic-expiration", 20)
        q = _str(q, 0xA1, 0xB1, expir.p, expir.n)
        count += 2
    q = _finish(start, q, 0xC1, 0xD1, count)

    # properties
    q = _lit(q, b"\x00\x53\x73", 3)
    start = q
    q += 9
    if mid.present:
        q = _str(q, 0xA1, 0xB1, mid.p, mid.n)
    else:
        q[0] = 0x40
        q += 1
    if uid.present:
        q = _str(q, 0xA0, 0xB0, uid.p, uid.n)
    else:
        q[0] = 0x40
        q += 1
    q = _lit(q, b"\x40\x40", 2)
    if reply.present:
        q = _str(q, 0xA1, 0xB1, reply.p, reply.n)
    else:
        q[0] = 0x40
        q += 1
    if corr.present:
        q = _str(q, 0xA1, 0xB1, corr.p, corr.n)
    else:
        q[0] = 0x40
        q += 1
    if ctype.present:
        q = _str(q, 0xA3, 0xB3, ctype.p, ctype.n)
    else:
        q[0] = 0x40
        q += 1
    if cenc.present:
        q = _str(q, 0xA3, 0xB3, cenc.p, cenc.n)
    else:
        q[0] = 0x40
        q += 1
    q[0] = 0x40
    q += 1
    if has_ts:
        q[0] = 0x83
        q = _put64(q + 1, ts * 1000)
    else:
        q[0] = 0x40
        q += 1
    q = _lit(q, b"\x40\x40\x40", 3)
    q = _finish(start, q, 0xC0, 0xD0, 13)

    # application properties
    q = _lit(q, b"\x00\x53\x74", 3)
    start = q
    q += 9
    count = 0
    if typ.present:
        q = _lit(q, b"\xa1\x0cx-basic-type", 14)
        q = _str(q, 0xA1, 0xB1, typ.p, typ.n)
        count += 2
    if app.present:
        q = _lit(q, b"\xa1\x0ex-basic-app-id", 16)
        q = _str(q, 0xA1, 0xB1, app.p, app.n)
        count += 2
    if has_table:
        q = _table(s, tstart, tend, q, &count)
    q = _finish(start, q, 0xC1, 0xD1, count)

    # data
    q = _lit(q, b"\x00\x53\x75", 3)
    q = _str(q, 0xA0, 0xB0, <const uchar*>PyBytes_AS_STRING(body), PyBytes_GET_SIZE(body))
    return q - out


cdef inline Py_ssize_t _bound(bytes properties, bytes body, str exchange, str routing_key):
    return (3 * PyBytes_GET_SIZE(properties) + PyBytes_GET_SIZE(body) + 4 * len(exchange)
            + 4 * len(routing_key) + 512)


def encode_message(bytes properties not None, bytes body not None, str exchange not None,
                   str routing_key not None) -> bytes:
    cdef Py_ssize_t bound = _bound(properties, body, exchange, routing_key)
    cdef bytearray buf = bytearray(bound)
    cdef Py_ssize_t n = _encode(properties, body, exchange, routing_key, <uchar*>PyByteArray_AS_STRING(buf))
    return PyBytes_FromStringAndSize(PyByteArray_AS_STRING(buf), n)


def append_message(bytearray buf not None, uint64_t publishing_id, bytes properties not None,
                   bytes body not None, str exchange not None, str routing_key not None) -> None:
    cdef Py_ssize_t old = PyByteArray_GET_SIZE(buf)
    cdef Py_ssize_t bound = _bound(properties, body, exchange, routing_key)
    cdef Py_ssize_t n
    cdef uchar* base
    PyByteArray_Resize(buf, old + 12 + bound)
    base = <uchar*>PyByteArray_AS_STRING(buf) + old
    try:
        n = _encode(properties, body, exchange, routing_key, base + 12)
    except BaseException:
        PyByteArray_Resize(buf, old)
        raise
    _put64(base, publishing_id)
    _put32(base + 8, <uint32_t>n)
    PyByteArray_Resize(buf, old + 12 + n)


cdef struct _Records:
    # a walk over the records of a chunk's data (plain entries and uncompressed sub-batches)
    const uchar* s
    Py_ssize_t p        # where the next entry (or sub-batch record) starts
    Py_ssize_t stop     # the end of the chunk's data
    Py_ssize_t sub_end  # the end of the sub-batch being walked
    uint32_t entries    # entries not started yet
    uint32_t left       # records of the sub-batch not taken yet


cdef inline void _records(_Records* r, const uchar* s, Py_ssize_t p, Py_ssize_t stop,
                          uint16_t entries) noexcept nogil:
    r.s = s
    r.p = p
    r.stop = stop
    r.sub_end = p
    r.entries = entries
    r.left = 0


cdef int _next_record(_Records* r, const uchar** rec, uint32_t* size) except -1:
    """1 with the next record's bytes and size, 0 after the last; StreamProtocolError where the
    chunk does not parse (split_chunk, dispatch_chunk's check and its pass all walk with this)."""
    cdef const uchar* s = r.s
    cdef Py_ssize_t p = r.p
    cdef uint32_t n
    cdef uchar head
    while True:
        if r.left:
            if p + 4 > r.sub_end:
                raise StreamProtocolError("stream sub-batch ends inside a record header")
            n = _u32(s + p)
            p += 4
            if p + n > r.sub_end:
                raise StreamProtocolError("stream sub-batch record overruns the sub-batch")
            rec[0] = s + p
            size[0] = n
            r.left -= 1
            r.p = r.sub_end if r.left == 0 else p + n
            return 1
        if r.entries == 0:
            return 0
        r.entries -= 1
        if p + 4 > r.stop:
            raise StreamProtocolError("stream chunk ends inside an entry header")
        head = s[p]
        if head & 0x80 == 0:  # a plain entry: 31-bit size, the record
            n = _u32(s + p)
            p += 4
            if p + n > r.stop:
                raise StreamProtocolError("stream chunk record overruns the chunk")
            rec[0] = s + p
            size[0] = n
            r.p = p + n
            return 1
        # a sub-batch: type + compression, records, uncompressed size, size, the records
        if p + 11 > r.stop:
            raise StreamProtocolError("stream chunk ends inside a sub-batch header")
        if (head >> 4) & 0x07:
            raise StreamProtocolError(
                f"compressed stream sub-batch (codec {(head >> 4) & 0x07}) is not supported")
        r.left = _u16(s + p + 1)
        r.sub_end = p + 11 + _u32(s + p + 7)
        p += 11
        if r.sub_end > r.stop:
            raise StreamProtocolError("stream sub-batch overruns the chunk")
        if r.left == 0:
            p = r.sub_end
        r.p = p


cdef struct _Chunk:
    # a chunk's header fields, its records' walk
    int8_t chunk_type
    uint16_t num_entries
    uint32_t num_records
    int64_t timestamp
    uint64_t first
    Py_ssize_t data
    Py_ssize_t stop


cdef const uchar* _chunk(const uchar[:] view, Py_ssize_t pos, Py_ssize_t end, _Chunk* c) except NULL:
    """The chunk header at view[pos:end] read into ``c``; the buffer's start. StreamProtocolError
    for a chunk that does not fit its frame."""
    cdef const uchar* s
    if end > view.shape[0] or pos < 0 or end - pos < 48:
        raise StreamProtocolError(f"stream chunk of {end - pos} bytes is shorter than its header")
    s = &view[0]
    c.chunk_type = <int8_t>s[pos + 1]
    c.num_entries = _u16(s + pos + 2)
    c.num_records = _u32(s + pos + 4)
    c.timestamp = <int64_t>_u64(s + pos + 8)
    c.first = _u64(s + pos + 24)
    c.data = pos + 48
    c.stop = c.data + _u32(s + pos + 36)
    if c.stop > end:
        raise StreamProtocolError(f"stream chunk data ({c.stop - c.data} bytes) overruns its frame")
    return s


def split_chunk(data, Py_ssize_t pos, Py_ssize_t end, uint64_t min_offset) -> tuple:
    cdef const uchar[:] view
    cdef _Chunk c
    cdef _Records it
    cdef const uchar* rec
    cdef uint32_t size
    cdef uint64_t offset
    cdef list out = []
    cdef const uchar* s
    view = data
    s = _chunk(view, pos, end, &c)
    if c.chunk_type != 0:
        return c.first + c.num_records, c.timestamp, out
    offset = c.first
    _records(&it, s, c.data, c.stop, c.num_entries)
    while _next_record(&it, &rec, &size):
        if offset >= min_offset:
            out.append(PyBytes_FromStringAndSize(<const char*>rec, size))
        offset += 1
    if not out:
        return offset, c.timestamp, out
    return (c.first if min_offset <= c.first else min_offset), c.timestamp, out


cdef Py_ssize_t _value_end(const uchar* m, Py_ssize_t p, Py_ssize_t n) except -1:
    cdef uchar code, cat
    cdef Py_ssize_t end
    if p >= n:
        raise ValueError("AMQP 1.0 message ends inside a value")
    code = m[p]
    p += 1
    if code == 0x00:
        return _value_end(m, _value_end(m, p, n), n)
    cat = code >> 4
    if cat == 0x4:
        end = p
    elif cat == 0x5:
        end = p + 1
    elif cat == 0x6:
        end = p + 2
    elif cat == 0x7:
        end = p + 4
    elif cat == 0x8:
        end = p + 8
    elif cat == 0x9:
        end = p + 16
    elif cat == 0xA or cat == 0xC or cat == 0xE:
        if p >= n:
            raise ValueError("AMQP 1.0 message ends inside a size")
        end = p + 1 + m[p]
    elif cat == 0xB or cat == 0xD or cat == 0xF:
        if p + 4 > n:
            raise ValueError("AMQP 1.0 message ends inside a size")
        end = p + 4 + _u32(m + p)
    else:
        raise ValueError(f"AMQP 1.0 value with unknown format code 0x{code:02x}")
    if end > n:
        raise ValueError("AMQP 1.0 value overruns the message")
    return end


cdef int _body_walk(const uchar* m, Py_ssize_t n, const uchar** at, Py_ssize_t* size,
                    list parts) except -1:
    """The one walk of a message's sections: how many data parts its body has, where the first
    lies (``at``, ``size``: with one, the body is those bytes where they are) and, when ``parts`` is
    a list, every part appended to it as bytes. ValueError for a message that is not AMQP 1.0."""
    cdef Py_ssize_t p = 0, vpos, end, k
    cdef int code, count = 0
    cdef uchar v
    cdef const uchar* q
    while p < n:
        if m[p] != 0x00 or p + 2 >= n:
            raise ValueError("not an AMQP 1.0 message: a section does not start with a descriptor")
        if m[p + 1] == 0x53:
            code = m[p + 2]
            vpos = p + 3
        else:
            vpos = _value_end(m, p + 1, n)
            code = -1
        end = _value_end(m, vpos, n)
        if code == 0x75 or code == 0x77:
            v = m[vpos]
            q = NULL
            if v == 0xA0 or v == 0xA1 or v == 0xA3:
                q = m + vpos + 2
                k = m[vpos + 1]
            elif v == 0xB0 or v == 0xB1 or v == 0xB3:
                q = m + vpos + 5
                k = _u32(m + vpos + 1)
            if q != NULL:
                if count == 0:
                    at[0] = q
                    size[0] = k
                if parts is not None:
                    parts.append(PyBytes_FromStringAndSize(<const char*>q, k))
                count += 1
        p = end
    return count


cdef inline int _body_span(const uchar* m, Py_ssize_t n, const uchar** at, Py_ssize_t* size) except -1:
    """How many data parts ``_body_at`` would join (same walk, same errors) and where the first lies
    (``at``, ``size``): with one, the body is those bytes where they are."""
    return _body_walk(m, n, at, size, None)


def message_body(bytes msg not None) -> bytes:
    return _message_body(msg)


cdef object _message_body(bytes msg):
    return _body_at(<const uchar*>PyBytes_AS_STRING(msg), PyBytes_GET_SIZE(msg))


cdef object _body_at(const uchar* m, Py_ssize_t n):
    """The message's body: its data parts joined (a one-part body copied once, in one walk)."""
    cdef const uchar* at = NULL
    cdef Py_ssize_t size = 0
    cdef int count = _body_walk(m, n, &at, &size, None)
    cdef list parts
    if count == 1:
        return PyBytes_FromStringAndSize(<const char*>at, size)
    if count == 0:
        return b""
    parts = []
    _body_walk(m, n, &at, &size, parts)
    return b"".join(parts)


cdef class TypedAppender:
    """Appends typed messages to a Publish frame in one compiled loop (see the .pyi)."""

    cdef public dict plans
    cdef object fallback

    def __init__(self, fallback):
        self.plans = {}
        self.fallback = fallback

    def add_plan(self, cls, plan):
        self.plans[cls] = (plan.encode, plan.exchange)

    def fill(self, bytearray buf not None, uint64_t publishing_id, it, Py_ssize_t max_count,
             Py_ssize_t limit, Py_ssize_t in_frame, list ids not None):
        cdef Py_ssize_t n = 0, old, bound, size
        cdef object plan, r, rk, props, body, mid, exchange
        cdef dict plans = self.plans
        cdef uchar* base
        for msg in it:
            r = None
            plan = plans.get(type(msg))
            if plan is not None:
                try:
                    r = (<tuple>plan)[0](msg)
                except Exception:  # the general path raises it again, with its diagnosis
                    r = None
            if r is not None:
                mid, rk, body, props = <tuple>r
                exchange = (<tuple>plan)[1]
            else:
                exchange, rk, props, body, mid = self.fallback(msg)
            bound = _bound(props, body, exchange, rk)
            old = PyByteArray_GET_SIZE(buf)
            PyByteArray_Resize(buf, old + 12 + bound)
            base = <uchar*>PyByteArray_AS_STRING(buf) + old
            try:
                size = _encode(props, body, exchange, rk, base + 12)
            except BaseException:
                PyByteArray_Resize(buf, old)
                raise
            if in_frame and old + 12 + size > limit:  # the next frame starts with this message
                PyByteArray_Resize(buf, old)
                return n, False, (props, body, exchange, rk, mid)
            _put64(base, publishing_id + n)
            _put32(base + 8, <uint32_t>size)
            PyByteArray_Resize(buf, old + 12 + size)
            ids.append(mid)
            n += 1
            in_frame += 1
            if n >= max_count:
                return n, False, None
        return n, True, None


cdef class _Plain:
    """What dispatch_records / dispatch_chunk keep between records of one call: the last handlers
    tuple seen (its one plain handler) and the last type's payload decoder, so a run of records of
    one type costs no attribute reads or registry lookups after its first. When that decoder is a
    payload reader's ``decode``, its ``decode_envelope`` is kept too: the message is read straight
    from the envelope's raw payload bytes (no payload dict), with the same values and errors."""

    cdef object handlers, fn, type_name, dec, dec_env, decoder
    cdef dict decoders

    def __cinit__(self, decoder):
        self.decoder = decoder

    cdef int handler(self, handlers) except -1:
        """1 (and ``fn`` set) when ``handlers`` is one plain handler, else 0: the general path."""
        cdef object spec
        if handlers is self.handlers:
            return 1
        if type(handlers) is not tuple or len(<tuple>handlers) != 1:
            return 0
        spec = (<tuple>handlers)[0]
        if spec.wants_context or spec.is_async:
            return 0
        self.handlers = handlers
        self.fn = spec.fn
        return 1

    cdef int _kept(self, t) except -1:
        """``dec`` / ``dec_env`` set to the payload decoder of type ``t`` (asked once per call)."""
        cdef object got, dec, dec_env, reader
        if self.decoders is None:
            self.decoders = {}
        got = self.decoders.get(t)
        if got is None:
            dec = self.decoder(t)
            dec_env = None
            if dec is not None:
                reader = getattr(dec, "__self__", None)
                if reader is not None and dec == getattr(reader, "decode", None):
                    dec_env = getattr(reader, "decode_envelope", None)
            got = (dec, dec_env)
            self.decoders[t] = got
        self.type_name = t
        self.dec = (<tuple>got)[0]
        self.dec_env = (<tuple>got)[1]
        return 0

    cdef object message(self, env, convert, registry):
        """``convert(env, registry)``, through the type's payload decoder (kept for the call) when
        there is one and the payload is a dict (a raw payload is one): the same message, the same
        errors."""
        cdef object t, payload
        if self.decoder is None:
            return convert(env, registry)
        t = env.type
        if not (t is self.type_name or (self.type_name is not None and t == self.type_name)):
            self._kept(t)
        if self.dec_env is not None:
            if getattr(env, "raw_payload", None) is not None:
                return self.dec_env(env)  # a JSON object kept as bytes: read without a dict
            if type(env.payload) is not dict:
                return convert(env, registry)
            return self.dec_env(env)
        payload = env.payload
        if type(payload) is not dict or self.dec is None:
            return convert(env, registry)
        return self.dec(payload, env.id, t, env.timestamp, env.correlation_id)


def dispatch_records(list records not None, Py_ssize_t start, decode, lookup, convert, registry,
                     decoder=None):
    """The common case of a stream consumer, compiled (see the .pyi)."""
    cdef Py_ssize_t i, n = len(records), handled = 0, ignored = 0
    cdef object raw, body, env, handlers, msg
    cdef _Plain plain = _Plain(decoder)
    for i in range(start, n):
        raw = records[i]
        if type(raw) is not bytes:
            return i, handled, ignored, None
        try:
            body = _message_body(<bytes>raw)
            env = decode(body)
        except Exception:
            return i, handled, ignored, None
        handlers = lookup(env.type)
        if not handlers:
            ignored += 1
            continue
        if not plain.handler(handlers):
            return i, handled, ignored, None
        try:
            msg = plain.message(env, convert, registry)
        except Exception:
            return i, handled, ignored, None
        try:
            plain.fn(msg)
        except Exception as exc:
            return i, handled, ignored, (exc, body, env, msg)
        handled += 1
    return n, handled, ignored, None


def dispatch_chunk(data, Py_ssize_t pos, Py_ssize_t end, uint64_t min_offset, decode, lookup, convert,
                   registry, decoder=None) -> tuple:
    """``split_chunk`` and ``dispatch_records`` in one pass over the chunk (see the .pyi)."""
    cdef const uchar[:] view
    cdef _Chunk c
    cdef _Records it
    cdef const uchar* rec
    cdef uint32_t size
    cdef uint64_t offset, start = 0
    cdef bint fast = 1, started = 0
    cdef Py_ssize_t done = 0, handled = 0, ignored = 0
    cdef list rest = []
    cdef object failure = None, body, env, handlers, msg
    cdef _Plain plain
    cdef const uchar* s
    cdef const uchar* bp
    cdef Py_ssize_t bn
    cdef _decode_at_t at = _envelope_at if decode is _envelope_decode else NULL
    view = data
    s = _chunk(view, pos, end, &c)
    if c.chunk_type != 0:
        return c.first + c.num_records, c.timestamp, 0, 0, 0, None, rest
    _records(&it, s, c.data, c.stop, c.num_entries)
    while _next_record(&it, &rec, &size):  # the whole chunk checked before any handler runs
        pass
    plain = _Plain(decoder)
    _records(&it, s, c.data, c.stop, c.num_entries)
    offset = c.first
    while _next_record(&it, &rec, &size):
        offset += 1
        if offset - 1 < min_offset:
            continue
        if not started:
            started = 1
            start = offset - 1
        if not fast:
            rest.append(PyBytes_FromStringAndSize(<const char*>rec, size))
            continue
        try:
            body = None
            env = None
            if _body_span(rec, size, &bp, &bn) == 1:  # one data part (the walk made once)
                if at != NULL:
                    env = at(bp, bn)  # the body read where it lies in the chunk
                if env is None:  # not the plain form: the decoder judges it as bytes
                    body = PyBytes_FromStringAndSize(<const char*>bp, bn)
                    env = decode(body)
            else:
                body = _body_at(rec, size)
                env = decode(body)
        except Exception:
            fast = 0
            rest.append(PyBytes_FromStringAndSize(<const char*>rec, size))
            continue
        handlers = lookup(env.type)
        if not handlers:
            ignored += 1
            done += 1
            continue
        if not plain.handler(handlers):
            fast = 0
            rest.append(PyBytes_FromStringAndSize(<const char*>rec, size))
            continue
        try:
            msg = plain.message(env, convert, registry)
        except Exception:
            fast = 0
            rest.append(PyBytes_FromStringAndSize(<const char*>rec, size))
            continue
        done += 1
        try:
            plain.fn(msg)
        except Exception as exc:
            fast = 0
            if body is None:
                body = _body_at(rec, size)
            failure = (exc, PyBytes_FromStringAndSize(<const char*>rec, size), body, env, msg)
            continue
        handled += 1
    if not started:
        return offset, c.timestamp, 0, 0, 0, None, rest
    return start, c.timestamp, done, handled, ignored, failure, rest


def sub_batch(frame, Py_ssize_t head) -> tuple:
    """The PublishedMessages of a Publish frame (after ``head`` bytes) as one uncompressed sub-entry
    batch (see the .pyi)."""
    cdef const uchar[:] view = frame
    cdef const uchar* s
    cdef Py_ssize_t n = view.shape[0], p = head, size, count = 0, inner = 0
    cdef uint64_t first = 0, last = 0
    cdef bytearray out
    cdef uchar* q
    if n < head:
        raise ValueError("Publish frame shorter than its header")
    s = &view[0]
    while p < n:
        if p + 12 > n:
            raise ValueError("Publish frame ends inside a message header")
        size = _u32(s + p + 8)
        if p + 12 + size > n:
            raise ValueError("Publish frame message overruns the frame")
        last = _u64(s + p)
        if count == 0:
            first = last
        count += 1
        inner += 4 + size
        p += 12 + size
    if count == 0 or count > 0xFFFF:
        raise ValueError(f"a sub-entry batch holds 1-65535 messages, not {count}")
    out = bytearray(head + 8 + 11 + inner)
    q = <uchar*>PyByteArray_AS_STRING(out)
    memcpy(q, s, head)
    q = _put64(q + head, first)
    q[0] = 0x80
    q[1] = <uchar>(count >> 8)
    q[2] = <uchar>(count & 0xFF)
    q = _put32(q + 3, <uint32_t>inner)
    q = _put32(q, <uint32_t>inner)
    p = head
    while p < n:
        size = _u32(s + p + 8)
        memcpy(q, s + p + 8, 4 + size)
        q += 4 + size
        p += 12 + size
    return out, first, last, count
