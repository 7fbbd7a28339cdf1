# cython: language_level=3
"""StageFlow's Go state codec, fast path, compiled (twin: ``mmate_fast/_py/flowstate.py``, which
documents the rules). Times are formatted and parsed in C (Go's UTC RFC3339Nano), strings are
checked for escapes in C, and the JSON-number check that guards orjson is one pass over the text;
whatever is not the plain form goes to the twin (times) or back to the caller's general path
(``None``), exactly as in the twin.
"""
from cpython.buffer cimport PyBUF_SIMPLE, PyBuffer_Release, PyObject_GetBuffer
from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_GET_SIZE
from cpython.dict cimport PyDict_SetItem
from cpython.unicode cimport (PyUnicode_DATA, PyUnicode_DecodeASCII, PyUnicode_GET_LENGTH, PyUnicode_KIND,
                              PyUnicode_READ)
from libc.stdint cimport uint64_t
from libc.string cimport memcmp, memcpy

cdef extern from "Python.h":
    double PyOS_string_to_double(const char *s, char **endptr, object overflow_exception) except? -1.0

import orjson

from mmate_fast._ext import load
from mmate_fast._py import flowstate as _twin
from mmate_fast._py.envelope import _go_escapes
from mmate_fast.errors import FlowWireError

_encode_json = load("envelope").encode_json
_loads = orjson.loads
_dumps = orjson.dumps
_JSONDecodeError = orjson.JSONDecodeError
_JSONEncodeError = orjson.JSONEncodeError

ZERO_NS = _twin.ZERO_NS

cdef long long _NS = 1000000000
cdef long long _MIN_S = -62135596800
cdef long long _MAX_S = 253402300799
# ns values inside +-_SAFE_NS are int64 for sure (C arithmetic); others go through Python ints
cdef long long _SAFE_NS = 9000000000000000000
cdef long long _SCALE[10]
_SCALE[:] = [1000000000, 100000000, 10000000, 1000000, 100000, 10000, 1000, 100, 10, 1]


class _Odd(Exception):
    """Not the plain form: the caller takes the general path."""


# --------------------------------------------------------------------------- calendar
cdef inline long long _floordiv(long long a, long long b):
    cdef long long q = a // b
    if (a % b != 0) and ((a < 0) != (b < 0)):
        q -= 1
    return q


cdef inline long long _days_from_civil(long long y, long long m, long long d):
    """Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's algorithm)."""
    if m <= 2:
        y -= 1
    cdef long long era = _floordiv(y, 400)
    cdef long long yoe = y - era * 400
    cdef long long mp = (m + 9) % 12
    cdef long long doy = (153 * mp + 2) // 5 + d - 1
    cdef long long doe = yoe * 365 + yoe // 4 - yoe // 100 + doy
    return era * 146097 + doe - 719468


cdef inline int _days_in_month(long long y, long long m):
    if m == 2:
        return 29 if (y % 4 == 0 and (y % 100 != 0 or y % 400 == 0)) else 28
    if m == 4 or m == 6 or m == 9 or m == 11:
        return 30
    return 31


cdef str _format_secs_frac(long long secs, long long frac):
    cdef long long days = _floordiv(secs, 86400)
    cdef long long sod = secs - days * 86400
    # civil_from_days
    cdef long long z = days + 719468
    cdef long long era = _floordiv(z, 146097)
    cdef long long doe = z - era * 146097
    cdef long long yoe = (doe - doe // 1460 + doe // 36524 - doe // 146096) // 365
    cdef long long y = yoe + era * 400
    cdef long long doy = doe - (365 * yoe + yoe // 4 - yoe // 100)
    cdef long long mp = (5 * doy + 2) // 153
    cdef long long d = doy - (153 * mp + 2) // 5 + 1
    cdef long long m = mp + 3 if mp < 10 else mp - 9
    if m <= 2:
        y += 1
    cdef char buf[32]
    cdef int i, n
    cdef long long hh = sod // 3600, mi = (sod // 60) % 60, ss = sod % 60
    buf[0] = 48 + (y // 1000) % 10
    buf[1] = 48 + (y // 100) % 10
    buf[2] = 48 + (y // 10) % 10
    buf[3] = 48 + y % 10
    buf[4] = 45
    buf[5] = 48 + m // 10
    buf[6] = 48 + m % 10
    buf[7] = 45
    buf[8] = 48 + d // 10
    buf[9] = 48 + d % 10
    buf[10] = 84
    buf[11] = 48 + hh // 10
    buf[12] = 48 + hh % 10
    buf[13] = 58
    buf[14] = 48 + mi // 10
    buf[15] = 48 + mi % 10
    buf[16] = 58
    buf[17] = 48 + ss // 10
    buf[18] = 48 + ss % 10
    n = 19
    if frac:
        buf[19] = 46
        for i in range(9):
            buf[28 - i] = 48 + frac % 10
            frac //= 10
        n = 29
        while buf[n - 1] == 48:
            n -= 1
    buf[n] = 90
    return buf[:n + 1].decode("ascii")


def format_time(ns):
    """``ns`` as Go writes a UTC ``time.Time`` in JSON (no quotes); FlowWireError outside 0001-9999."""
    return _format_time(ns)


cdef str _format_time(ns):
    cdef long long v, secs
    if ns.__class__ is int and -_SAFE_NS < ns < _SAFE_NS:
        v = ns
        secs = _floordiv(v, _NS)
        return _format_secs_frac(secs, v - secs * _NS)
    secs_o, frac_o = divmod(ns, 1000000000)
    if not _MIN_S <= secs_o <= _MAX_S:
        raise FlowWireError(f"time {ns} ns is outside the years 0001-9999 that Go can write in JSON")
    return _format_secs_frac(secs_o, frac_o)


cdef object _parse_fast(str text):
    """Go's own UTC form ``YYYY-MM-DDTHH:MM:SS[.f{1,9}]Z`` in C; None for anything else."""
    if PyUnicode_KIND(text) != 1:  # a character above U+00FF: not that form
        return None
    return _parse_bytes(<const unsigned char *>PyUnicode_DATA(text), PyUnicode_GET_LENGTH(text))


cdef inline int _bdigit(unsigned char c):
    return <int>c - 48 if 48 <= c <= 57 else -1


cdef object _parse_bytes(const unsigned char *s, Py_ssize_t n):
    """``_parse_fast`` of the ``n`` bytes at ``s`` (one byte per character)."""
    if n < 20:
        return None
    cdef int vals[14]
    cdef int pos[14]
    pos[:] = [0, 1, 2, 3, 5, 6, 8, 9, 11, 12, 14, 15, 17, 18]
    cdef int i, dg
    for i in range(14):
        dg = _bdigit(s[pos[i]])
        if dg < 0:
            return None
        vals[i] = dg
    if s[4] != 45 or s[7] != 45 or s[10] != 84 or s[13] != 58 or s[16] != 58 or s[n - 1] != 90:
        return None
    cdef long long y = vals[0] * 1000 + vals[1] * 100 + vals[2] * 10 + vals[3]
    cdef long long mo = vals[4] * 10 + vals[5]
    cdef long long d = vals[6] * 10 + vals[7]
    cdef long long hh = vals[8] * 10 + vals[9]
    cdef long long mi = vals[10] * 10 + vals[11]
    cdef long long ss = vals[12] * 10 + vals[13]
    if y < 1 or mo < 1 or mo > 12 or d < 1 or d > _days_in_month(y, mo) or hh > 23 or mi > 59 or ss > 59:
        return None
    cdef long long frac = 0
    cdef Py_ssize_t nf = n - 21  # digits between "." and "Z"
    if n == 20:
        pass
    elif s[19] != 46 or nf < 1 or nf > 9:
        return None
    else:
        for i in range(nf):
            dg = _bdigit(s[20 + i])
            if dg < 0:
                return None
            frac = frac * 10 + dg
        frac *= _SCALE[nf]
    cdef long long secs = _days_from_civil(y, mo, d) * 86400 + hh * 3600 + mi * 60 + ss
    if -9000000000 < secs < 9000000000:
        return secs * _NS + frac
    return <object>secs * 1000000000 + frac


def parse_time(text):
    """An RFC 3339 time as nanoseconds since the epoch, UTC; FlowWireError when it is not one."""
    if text.__class__ is str:
        v = _parse_fast(text)
        if v is not None:
            return v
    return _twin.parse_time(text)


# --------------------------------------------------------------------------- encoding
cdef inline bint _safe(str s):
    cdef Py_ssize_t i, n = PyUnicode_GET_LENGTH(s)
    cdef int kind = PyUnicode_KIND(s)
    cdef void *data = PyUnicode_DATA(s)
    cdef Py_UCS4 c
    for i in range(n):
        c = PyUnicode_READ(kind, data, i)
        if c < 0x20 or c >= 0x7F or c == 34 or c == 92 or c == 60 or c == 62 or c == 38:
            return False
    return True


def quote(s):
    """``s`` as a JSON string the way Go writes it (quotes included); _Odd for a non-str."""
    return _quote(s)


cdef str _quote(s):
    """``quote`` for this module's writers: a C call, not a Python one."""
    if s.__class__ is not str:
        raise _Odd
    if _safe(s):
        return '"' + s + '"'
    try:
        return _go_escapes(_dumps(s)).decode()
    except _JSONEncodeError:
        raise _Odd from None


cdef str _map(value):
    if value.__class__ is not dict:
        raise _Odd
    try:
        return _encode_json(value).decode()
    except Exception:
        raise _Odd from None


cdef str _int(v):
    if v.__class__ is not int:
        raise _Odd
    return str(v)


cdef str _time(ns):
    if ns.__class__ is not int:
        raise _Odd
    try:
        return _format_time(ns)
    except FlowWireError:
        raise _Odd from None


cdef void _result(list out, r) except *:
    out.append('{"stageId":')
    out.append(_quote(r.stage_id))
    out.append(',"status":')
    out.append(_quote(r.status))
    data = r.data
    if data:
        out.append(',"data":')
        out.append(_map(data))
    error = r.error
    if error:
        out.append(',"error":')
        out.append(_quote(error))
    out.append(',"startTime":"')
    out.append(_time(r.start_ns))
    end = r.end_ns
    if end is not None:
        out.append('","endTime":"')
        out.append(_time(end))
    out.append('","duration":')
    out.append(_int(r.duration_ns))
    out.append("}")


def encode_result(result):
    """A StageResult as Go's ``json.Marshal`` writes it, or None (not the plain form)."""
    cdef list out = []
    try:
        _result(out, result)
    except _Odd:
        return None
    return "".join(out)


cdef Py_ssize_t _state_out(list out, state, Py_ssize_t *last_end) except -2:
    """Append ``state``'s JSON parts to ``out`` (raises _Odd); returns where the last stage result's
    parts begin in ``out`` (-1: no result) and sets ``last_end`` to where they end."""
    cdef bint first = True
    cdef Py_ssize_t last = -1
    out += ['{"workflowId":', _quote(state.workflow_id), ',"instanceId":', _quote(state.instance_id),
            ',"status":', _quote(state.status)]
    cur = state.current_stage
    if cur:
        out.append(',"currentStage":')
        out.append(_quote(cur))
    out.append(',"stageResults":[')
    for r in state.stage_results:
        if not first:
            out.append(",")
        first = False
        last = len(out)
        _result(out, r)
    last_end[0] = len(out)
    out.append('],"globalData":')
    gd = state.global_data
    out.append(_map(gd) if gd is not None else "{}")
    out.append(',"startTime":"')
    out.append(_time(state.start_ns))
    end = state.end_ns
    if end is not None:
        out.append('","endTime":"')
        out.append(_time(end))
    out.append('","lastModified":"')
    out.append(_time(state.last_modified_ns))
    out.append('"')
    err = state.error_message
    if err:
        out.append(',"errorMessage":')
        out.append(_quote(err))
    out.append(',"version":')
    out.append(_int(state.version))
    out.append("}")
    return last


def encode_state(state):
    """A WorkflowState as Go's ``json.Marshal`` writes it, or None (not the plain form)."""
    cdef list out = []
    cdef Py_ssize_t end = 0
    try:
        _state_out(out, state, &end)
    except _Odd:
        return None
    return "".join(out)


def advance(state, result, dict updates, now_ns, end_ns=None):
    """A stage hop's whole state work in one call (see the twin): ``result`` appended, ``updates``
    merged into ``globalData``, version+1, ``lastModified`` = ``now_ns``, ``currentStage`` cleared
    (and with ``end_ns``: status ``completed``, ``endTime`` = ``lastModified`` = ``end_ns``,
    version+1); returns ``(state_json, claim_json)``, or None when not the plain form (the state is
    advanced either way; an ``updates`` orjson cannot write raises first, before any change)."""
    cdef list out = []
    cdef Py_ssize_t start, end = 0
    upd = _dumps(updates).decode()
    state.stage_results.append(result)
    state.global_data.update(updates)
    state.version += 1
    state.last_modified_ns = now_ns
    state.current_stage = None
    if end_ns is not None:
        state.status = "completed"
        state.end_ns = end_ns
        state.last_modified_ns = end_ns
        state.version += 1
    try:
        start = _state_out(out, state, &end)
    except _Odd:
        return None
    return "".join(out), '{"result":' + "".join(out[start:end]) + ',"updates":' + upd + "}"


# --------------------------------------------------------------------------- decoding
cdef bint _plain_json(str text):
    """The twin's check in one pass (see there)."""
    cdef Py_ssize_t i, n = PyUnicode_GET_LENGTH(text)
    cdef int kind = PyUnicode_KIND(text)
    cdef void *data = PyUnicode_DATA(text)
    cdef int run = 0, c, p1 = 3, p2 = 3  # classes of the previous two characters
    cdef bint in_str = False, esc = False, neg = False
    cdef Py_UCS4 ch
    for i in range(n):
        ch = PyUnicode_READ(kind, data, i)
        if in_str:
            if esc:
                esc = False
            elif ch == 92:
                esc = True
            elif ch == 34:
                in_str = False
            continue
        if ch == 34:
            in_str = True
            c = 3
        elif 48 <= ch <= 57:
            c = 0
        elif (ch == 101 or ch == 69) and p1 == 0:  # an exponent (the e of true/false follows a letter)
            return False
        elif ch == 45:
            c = 2
        elif ch == 46 or (65 <= ch <= 90) or (97 <= ch <= 122):
            c = 1
        else:
            c = 3
        if c == 0:
            if run == 0:
                neg = p1 == 2
            run += 1
            if run >= 20 or (run == 19 and neg):  # a 19-digit negative may be below int64 (orjson: float)
                return False
        else:
            run = 0
            if c == 3 and p1 == 0 and p2 == 2:
                return False
        p2 = p1
        p1 = c
    return not (p1 == 0 and p2 == 2)


cdef inline str _str(v):
    if v.__class__ is str:
        return v
    if v is None:
        return ""
    raise _Odd


cdef inline object _opt_str(v):
    if v.__class__ is str:
        return v or None
    if v is None:
        return None
    raise _Odd


cdef inline object _opt_dict(v):
    if v is None or v.__class__ is dict:
        return v
    raise _Odd


cdef object _read_time(v):
    if v is None:
        return ZERO_NS
    if v.__class__ is str:
        r = _parse_fast(v)
        if r is not None:
            return r
    try:
        return _twin.parse_time(v)
    except FlowWireError:
        raise _Odd from None


cdef inline object _read_int(v):
    if v.__class__ is int:
        return v
    if v is None:
        return 0
    raise _Odd


def read_strs(dict obj, tuple keys):
    """The values of ``keys`` in ``obj`` as a tuple of str (a missing key or null: ""), or None when
    one of them is not a string (the caller's strict reader names it)."""
    cdef list out = []
    for key in keys:
        v = obj.get(key)
        if v.__class__ is str:
            out.append(v)
        elif v is None:
            out.append("")
        else:
            return None
    return tuple(out)


def read_result(obj, result_cls):
    """A decoded StageResult object (a dict from JSON) as ``result_cls(...)``, or None when it is not
    the plain form (see the twin)."""
    if obj.__class__ is not dict:
        return None
    cdef dict rd = obj
    try:
        end = rd.get("endTime")
        return result_cls(
            _str(rd.get("stageId")), _str(rd.get("status")), _opt_dict(rd.get("data")),
            _opt_str(rd.get("error")), _read_time(rd.get("startTime")),
            None if end is None else _read_time(end), _read_int(rd.get("duration")))
    except _Odd:
        return None


def decode_state(text, state_cls, result_cls):
    """A ``serializedWorkflowState`` string as ``state_cls(...)``, or None when it is not the plain
    form (see the twin)."""
    if text.__class__ is not str or not _plain_json(text):
        return None
    try:
        obj = _loads(text)
    except _JSONDecodeError:
        return None
    if obj.__class__ is not dict:
        return None
    cdef dict o = obj
    wid = o.get("workflowId")
    iid = o.get("instanceId")
    if wid.__class__ is not str or iid.__class__ is not str or not wid or not iid:
        return None
    cdef list results = []
    cdef dict rd
    try:
        raw = o.get("stageResults")
        if raw is not None:
            if raw.__class__ is not list:
                return None
            for r in <list>raw:
                if r.__class__ is not dict:
                    return None
                rd = r
                end = rd.get("endTime")
                results.append(result_cls(
                    _str(rd.get("stageId")), _str(rd.get("status")), _opt_dict(rd.get("data")),
                    _opt_str(rd.get("error")), _read_time(rd.get("startTime")),
                    None if end is None else _read_time(end), _read_int(rd.get("duration"))))
        gd = o.get("globalData")
        if gd is None:
            gd = {}
        elif gd.__class__ is not dict:
            return None
        end = o.get("endTime")
        return state_cls(wid, iid, _str(o.get("status")), _opt_str(o.get("currentStage")), results, gd,
                         _read_time(o.get("startTime")), None if end is None else _read_time(end),
                         _read_time(o.get("lastModified")), _opt_str(o.get("errorMessage")),
                         _read_int(o.get("version")))
    except _Odd:
        return None


# --------------------------------------------------------------------------- heard terminal events
# A terminal event's body (the Mmate envelope JSON) read straight into the WorkflowState the wait
# listener wants: one validating pass over the bytes, only the values it keeps made into objects.
# It accepts only what orjson.loads accepts and reads it as orjson would (the last of a repeated key
# wins, the values of data objects equal orjson's); anything it is unsure of declines (None): an
# exponent or more than 18 digits in a number, a key with an escape or beyond ASCII, nesting deeper
# than _DEPTH, and every value the general reader (``_waiting.state_from_event``) would treat
# differently from the plain form. Strings with an escape or beyond ASCII are handed to orjson.

cdef enum:
    _DEPTH = 32      # deeper nesting declines
    _DIGITS = 18     # a number with more digits declines (an int of 18 digits fits a long long)
    _F_ESC = 1       # a string has a backslash
    _F_HIGH = 2      # a string has a byte >= 0x80

# payload keys the reader keeps (index into its spans)
cdef enum:
    _K_WID, _K_IID, _K_RESULTS, _K_SEQ, _K_START, _K_END, _K_FINAL, _K_FAILURE, _K_FAILED_STAGE,
    _K_STATE_DATA, _K_ERROR, _K_WF_DATA, _K_COMP_END, _K_ORIG_ERROR, _K_N

# stage result keys
cdef enum:
    _R_STAGE, _R_STATUS, _R_DATA, _R_ERROR, _R_START, _R_END, _R_DURATION, _R_N

_COMPLETED = "WorkflowCompletedEvent"
_FAILED = "WorkflowFailedEvent"
_COMPENSATED = "WorkflowCompensatedEvent"


cdef inline Py_ssize_t _ws(const unsigned char *s, Py_ssize_t i, Py_ssize_t n) noexcept nogil:
    cdef unsigned char c
    while i < n:
        c = s[i]
        if c != 32 and c != 10 and c != 13 and c != 9:
            break
        i += 1
    return i


cdef inline bint _hex(unsigned char c) noexcept nogil:
    return (48 <= c <= 57) or (65 <= c <= 70) or (97 <= c <= 102)


cdef extern from *:
    """
    /* the index of the lowest byte whose high bit is set in m (m != 0); 0 where that cannot be had
       cheaply (the caller then walks from the word's first byte) */
    static inline int mm_lowest_byte(uint64_t m) {
    #if defined(__GNUC__) && defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
        return __builtin_ctzll(m) >> 3;
    #else
        return 0;
    #endif
    }
    """
    int mm_lowest_byte(uint64_t m) noexcept nogil


cdef inline uint64_t _stops8(uint64_t v) noexcept nogil:
    """The bytes of ``v`` (8 read from memory) that end or escape a JSON string or need a look: below
    0x20 or >= 0x80, a quote, a backslash; flagged by their high bit. Exact word tests: such a byte is
    never missed, and the lowest flagged byte is one (a borrow only flags bytes above the one that
    made it)."""
    cdef uint64_t ones = 0x0101010101010101ULL
    cdef uint64_t t = v | ((v - ones * 0x20) & ~v)  # high bit: >= 0x80, or below 0x20
    cdef uint64_t x = v ^ (ones * 0x22)  # '"'
    t |= (x - ones) & ~x
    x = v ^ (ones * 0x5C)  # '\\'
    t |= (x - ones) & ~x
    return t & 0x8080808080808080ULL


cdef Py_ssize_t _str_end(const unsigned char *s, Py_ssize_t i, Py_ssize_t n, int *flags) noexcept nogil:
    """``s[i]`` is a quote: where the JSON string ends (after its closing quote), -1 when it is not a
    valid one; ``flags`` gets _F_ESC / _F_HIGH. Read 8 bytes at a time up to the first that stops
    them (``_stops8``)."""
    cdef unsigned char c
    cdef uint64_t v, m
    i += 1
    while True:
        while i + 8 <= n:
            memcpy(&v, s + i, 8)
            m = _stops8(v)
            if m:
                i += mm_lowest_byte(m)
                break
            i += 8
        while True:
            if i >= n:
                return -1
            c = s[i]
            if 32 <= c < 128 and c != 34 and c != 92:
                i += 1
                continue
            break
        if c == 34:
            return i + 1
        if c == 92:
            flags[0] |= _F_ESC
            if i + 1 >= n:
                return -1
            c = s[i + 1]
            if c == 117:
                if i + 5 >= n or not (_hex(s[i + 2]) and _hex(s[i + 3]) and _hex(s[i + 4]) and _hex(s[i + 5])):
                    return -1
                i += 6
            elif c == 34 or c == 92 or c == 47 or c == 98 or c == 102 or c == 110 or c == 114 or c == 116:
                i += 2
            else:
                return -1
        elif c < 32:
            return -1
        else:
            flags[0] |= _F_HIGH
            i += 1


cdef Py_ssize_t _num_end(const unsigned char *s, Py_ssize_t i, Py_ssize_t n, bint *is_int) noexcept nogil:
    """``s[i]`` begins a number: where it ends, -1 when it is not one we read (see above)."""
    cdef Py_ssize_t digits = 0
    if s[i] == 45:
        i += 1
        if i >= n:
            return -1
    if s[i] == 48:
        i += 1
        digits = 1
        if i < n and 48 <= s[i] <= 57:  # a leading zero
            return -1
    elif 49 <= s[i] <= 57:
        while i < n and 48 <= s[i] <= 57:
            i += 1
            digits += 1
    else:
        return -1
    is_int[0] = True
    if i < n and s[i] == 46:
        i += 1
        is_int[0] = False
        if i >= n or not (48 <= s[i] <= 57):
            return -1
        while i < n and 48 <= s[i] <= 57:
            i += 1
            digits += 1
    if digits > _DIGITS or (i < n and (s[i] == 101 or s[i] == 69)):
        return -1
    return i


cdef object _odd_str(const unsigned char *s, Py_ssize_t a, Py_ssize_t b):
    """The JSON string ``s[a:b]`` (quotes included) with an escape or beyond ASCII, by orjson; None when
    orjson refuses it."""
    try:
        return _loads((<const char *>s)[a:b])
    except _JSONDecodeError:
        return None


cdef Py_ssize_t _skip(const unsigned char *s, Py_ssize_t i, Py_ssize_t n, int depth) except -2:
    """``s[i]`` begins a value: where it ends, -1 when orjson would refuse it or it is declined."""
    cdef unsigned char c, close
    cdef int flags = 0
    cdef bint is_int
    cdef Py_ssize_t j
    if i >= n:
        return -1
    c = s[i]
    if c == 34:
        j = _str_end(s, i, n, &flags)
        if j < 0 or (flags and _odd_str(s, i, j) is None):
            return -1
        return j
    if c == 123 or c == 91:
        if depth >= _DEPTH:
            return -1
        close = c + 2  # } or ]
        i = _ws(s, i + 1, n)
        if i < n and s[i] == close:
            return i + 1
        while True:
            if c == 123:  # a key and its colon
                if i >= n or s[i] != 34:
                    return -1
                flags = 0
                j = _str_end(s, i, n, &flags)
                if j < 0 or (flags and _odd_str(s, i, j) is None):
                    return -1
                i = _ws(s, j, n)
                if i >= n or s[i] != 58:
                    return -1
                i = _ws(s, i + 1, n)
            i = _skip(s, i, n, depth + 1)
            if i < 0:
                return -1
            i = _ws(s, i, n)
            if i >= n:
                return -1
            if s[i] == 44:
                i = _ws(s, i + 1, n)
            elif s[i] == close:
                return i + 1
            else:
                return -1
    if c == 45 or 48 <= c <= 57:
        return _num_end(s, i, n, &is_int)
    if c == 116:
        return i + 4 if i + 4 <= n and memcmp(s + i, b"true", 4) == 0 else -1
    if c == 102:
        return i + 5 if i + 5 <= n and memcmp(s + i, b"false", 5) == 0 else -1
    if c == 110:
        return i + 4 if i + 4 <= n and memcmp(s + i, b"null", 4) == 0 else -1
    return -1


cdef inline bint _lit(const unsigned char *s, Py_ssize_t i, Py_ssize_t n, const char *word,
                      Py_ssize_t size) noexcept nogil:
    return i + size <= n and memcmp(s + i, word, size) == 0


cdef object _string_at(const unsigned char *s, Py_ssize_t i, Py_ssize_t n, Py_ssize_t *end):
    """``s[i]`` is a quote: the JSON string as orjson reads it (``end``: after it); _Odd when orjson
    would refuse it."""
    cdef int flags = 0
    cdef Py_ssize_t j = _str_end(s, i, n, &flags)
    if j < 0:
        raise _Odd
    end[0] = j
    if flags:
        v = _odd_str(s, i, j)
        if v is None:
            raise _Odd
        return v
    return PyUnicode_DecodeASCII(<const char *>s + i + 1, j - i - 2, NULL)


cdef object _number_at(const unsigned char *s, Py_ssize_t i, Py_ssize_t n, Py_ssize_t *end, bint want_int):
    """``s[i]`` begins a number: it as orjson reads it (``end``: after it); _Odd when it is not one we
    read (or not an integer with ``want_int``)."""
    cdef bint is_int = False
    cdef long long v = 0
    cdef Py_ssize_t j = _num_end(s, i, n, &is_int)
    cdef char buf[32]
    if j < 0 or (want_int and not is_int):
        raise _Odd
    end[0] = j
    if is_int:
        if s[i] == 45:
            i += 1
            while i < j:
                v = v * 10 - (s[i] - 48)
                i += 1
        else:
            while i < j:
                v = v * 10 + (s[i] - 48)
                i += 1
        return v
    memcpy(buf, s + i, j - i)  # at most _DIGITS digits, a sign and a point
    buf[j - i] = 0
    return PyOS_string_to_double(buf, NULL, None)


cdef object _build(const unsigned char *s, Py_ssize_t i, Py_ssize_t n, int depth, Py_ssize_t *end):
    """``s[i]`` begins a value: it as orjson reads it (``end``: after it; the last of a repeated key
    wins), checked as ``_skip`` checks it (_Odd where ``_skip`` gives -1)."""
    cdef unsigned char c, close
    cdef Py_ssize_t j
    cdef dict d
    cdef list items
    if i >= n:
        raise _Odd
    c = s[i]
    if c == 34:
        return _string_at(s, i, n, end)
    if c == 123 or c == 91:
        if depth >= _DEPTH:
            raise _Odd
        close = c + 2  # } or ]
        if c == 123:
            d = {}
            out = d
        else:
            items = []
            out = items
        i = _ws(s, i + 1, n)
        if i < n and s[i] == close:
            end[0] = i + 1
            return out
        while True:
            if c == 123:
                if i >= n or s[i] != 34:
                    raise _Odd
                key = _string_at(s, i, n, &j)
                i = _ws(s, j, n)
                if i >= n or s[i] != 58:
                    raise _Odd
                i = _ws(s, i + 1, n)
                PyDict_SetItem(d, key, _build(s, i, n, depth + 1, &j))
            else:
                items.append(_build(s, i, n, depth + 1, &j))
            i = _ws(s, j, n)
            if i >= n:
                raise _Odd
            if s[i] == 44:
                i = _ws(s, i + 1, n)
            elif s[i] == close:
                end[0] = i + 1
                return out
            else:
                raise _Odd
    if c == 45 or 48 <= c <= 57:
        return _number_at(s, i, n, end, False)
    if c == 116 and _lit(s, i, n, b"true", 4):
        end[0] = i + 4
        return True
    if c == 102 and _lit(s, i, n, b"false", 5):
        end[0] = i + 5
        return False
    if c == 110 and _lit(s, i, n, b"null", 4):
        end[0] = i + 4
        return None
    raise _Odd


cdef inline bint _null_at(const unsigned char *s, Py_ssize_t i, Py_ssize_t n, Py_ssize_t *end) noexcept nogil:
    """``s[i:]`` begins with null (``end``: after it)."""
    if i + 4 <= n and memcmp(s + i, b"null", 4) == 0:
        end[0] = i + 4
        return True
    return False


cdef object _time_at(const unsigned char *s, Py_ssize_t i, Py_ssize_t n, Py_ssize_t *end):
    """``s[i]`` begins a time in Go's own UTC form (a string without escapes): its ns; _Odd for any
    other value (the general path parses the other forms or names what is wrong)."""
    cdef int flags = 0
    cdef Py_ssize_t j
    if i >= n or s[i] != 34:
        raise _Odd
    j = _str_end(s, i, n, &flags)
    if j < 0 or flags:
        raise _Odd
    v = _parse_bytes(s + i + 1, j - i - 2)
    if v is None:
        raise _Odd
    end[0] = j
    return v


cdef object _opt_str_at(const unsigned char *s, Py_ssize_t i, Py_ssize_t n, Py_ssize_t *end, object empty):
    """A string (an empty one: ``empty``) or null (``empty``); _Odd for any other value."""
    if i < n and s[i] == 34:
        v = _string_at(s, i, n, end)
        return v if v else empty
    if _null_at(s, i, n, end):
        return empty
    raise _Odd


cdef object _opt_dict_at(const unsigned char *s, Py_ssize_t i, Py_ssize_t n, Py_ssize_t *end, bint empty,
                         int depth):
    """An object, or null (``{}`` with ``empty``, else None); _Odd for any other value."""
    if i < n and s[i] == 123:
        return _build(s, i, n, depth, end)
    if _null_at(s, i, n, end):
        return {} if empty else None
    raise _Odd


cdef inline bint _key(const unsigned char *s, Py_ssize_t a, Py_ssize_t b, const char *name,
                      Py_ssize_t size) noexcept nogil:
    """The key ``s[a:b]`` (quotes included) is ``name``."""
    return b - a - 2 == size and memcmp(s + a + 1, name, size) == 0


cdef int _payload_key(const unsigned char *s, Py_ssize_t a, Py_ssize_t b) noexcept nogil:
    """The payload key ``s[a:b]`` (quotes included) as a _K_ index, or -1 (not kept)."""
    cdef Py_ssize_t size = b - a - 2
    cdef const unsigned char *k = s + a + 1
    if size == 10:
        if memcmp(k, b"workflowId", 10) == 0:
            return _K_WID
        if memcmp(k, b"instanceId", 10) == 0:
            return _K_IID
    elif size == 12:
        if memcmp(k, b"stageResults", 12) == 0:
            return _K_RESULTS
        if memcmp(k, b"workflowData", 12) == 0:
            return _K_WF_DATA
    elif size == 8:
        if memcmp(k, b"sequence", 8) == 0:
            return _K_SEQ
    elif size == 9:
        if memcmp(k, b"startTime", 9) == 0:
            return _K_START
        if memcmp(k, b"finalData", 9) == 0:
            return _K_FINAL
        if memcmp(k, b"stateData", 9) == 0:
            return _K_STATE_DATA
    elif size == 7:
        if memcmp(k, b"endTime", 7) == 0:
            return _K_END
    elif size == 11:
        if memcmp(k, b"failureTime", 11) == 0:
            return _K_FAILURE
    elif size == 13:
        if memcmp(k, b"failedStageId", 13) == 0:
            return _K_FAILED_STAGE
        if memcmp(k, b"originalError", 13) == 0:
            return _K_ORIG_ERROR
    elif size == 5:
        if memcmp(k, b"error", 5) == 0:
            return _K_ERROR
    elif size == 19:
        if memcmp(k, b"compensationEndTime", 19) == 0:
            return _K_COMP_END
    return -1


cdef int _result_key(const unsigned char *s, Py_ssize_t a, Py_ssize_t b) noexcept nogil:
    """The stage result key ``s[a:b]`` (quotes included) as a _R_ index, or -1 (not kept)."""
    if _key(s, a, b, b"stageId", 7):
        return _R_STAGE
    if _key(s, a, b, b"status", 6):
        return _R_STATUS
    if _key(s, a, b, b"data", 4):
        return _R_DATA
    if _key(s, a, b, b"error", 5):
        return _R_ERROR
    if _key(s, a, b, b"startTime", 9):
        return _R_START
    if _key(s, a, b, b"endTime", 7):
        return _R_END
    if _key(s, a, b, b"duration", 8):
        return _R_DURATION
    return -1


cdef object _result_at(const unsigned char *s, Py_ssize_t i, Py_ssize_t n, result_cls, Py_ssize_t *end):
    """``s[i]`` begins a stage result: ``result_cls(...)`` as ``read_result`` reads it (``end``: after
    it); _Odd for anything ``read_result`` declines or orjson refuses."""
    cdef int flags, key
    cdef Py_ssize_t j = 0, k
    stage = status = ""
    data = error = stop = None
    start = ZERO_NS
    duration = 0
    if i >= n or s[i] != 123:
        raise _Odd
    i = _ws(s, i + 1, n)
    if i < n and s[i] == 125:
        end[0] = i + 1
        return result_cls(stage, status, data, error, start, stop, duration)
    while True:
        if i >= n or s[i] != 34:
            raise _Odd
        flags = 0
        j = _str_end(s, i, n, &flags)
        if j < 0 or flags:
            raise _Odd
        key = _result_key(s, i, j)
        k = _ws(s, j, n)
        if k >= n or s[k] != 58:
            raise _Odd
        k = _ws(s, k + 1, n)
        if key == _R_STAGE:
            stage = _opt_str_at(s, k, n, &j, "")
        elif key == _R_STATUS:
            status = _opt_str_at(s, k, n, &j, "")
        elif key == _R_DATA:
            data = _opt_dict_at(s, k, n, &j, False, 4)
        elif key == _R_ERROR:
            error = _opt_str_at(s, k, n, &j, None)
        elif key == _R_START:
            start = ZERO_NS if _null_at(s, k, n, &j) else _time_at(s, k, n, &j)
        elif key == _R_END:
            stop = None if _null_at(s, k, n, &j) else _time_at(s, k, n, &j)
        elif key == _R_DURATION:
            duration = 0 if _null_at(s, k, n, &j) else _number_at(s, k, n, &j, True)
        else:
            j = _skip(s, k, n, 4)
            if j < 0:
                raise _Odd
        i = _ws(s, j, n)
        if i >= n:
            raise _Odd
        if s[i] == 44:
            i = _ws(s, i + 1, n)
        elif s[i] == 125:
            end[0] = i + 1
            return result_cls(stage, status, data, error, start, stop, duration)
        else:
            raise _Odd


cdef list _results_at(const unsigned char *s, Py_ssize_t i, Py_ssize_t n, result_cls, Py_ssize_t *end):
    """``s[i]`` is ``[``: the stage results (``end``: after them)."""
    cdef list out = []
    cdef Py_ssize_t j = 0
    i = _ws(s, i + 1, n)
    if i < n and s[i] == 93:
        end[0] = i + 1
        return out
    while True:
        out.append(_result_at(s, i, n, result_cls, &j))
        i = _ws(s, j, n)
        if i >= n:
            raise _Odd
        if s[i] == 44:
            i = _ws(s, i + 1, n)
        elif s[i] == 93:
            end[0] = i + 1
            return out
        else:
            raise _Odd


#: a payload key that is not there
cdef object _ABSENT = object()


cdef object _payload_value(const unsigned char *s, Py_ssize_t k, Py_ssize_t n, int key, result_cls,
                           Py_ssize_t *end):
    """The value at ``s[k]`` of payload key ``key`` as ``_waiting.state_from_event`` takes it; _Odd
    for one it would treat otherwise than the plain form (or raise on)."""
    if key == _K_RESULTS:
        if k < n and s[k] == 91:
            return _results_at(s, k, n, result_cls, end)
        if _null_at(s, k, n, end):
            return []
        raise _Odd
    if key == _K_WID or key == _K_IID:
        if k < n and s[k] == 34:
            return _string_at(s, k, n, end)
        raise _Odd
    if key == _K_SEQ:
        if k < n and (s[k] == 45 or 48 <= s[k] <= 57):
            return _number_at(s, k, n, end, True)
        raise _Odd
    if key == _K_START or key == _K_END or key == _K_FAILURE or key == _K_COMP_END:
        return _time_at(s, k, n, end)
    if key == _K_FINAL or key == _K_STATE_DATA or key == _K_WF_DATA:
        return _opt_dict_at(s, k, n, end, True, 2)
    return _opt_str_at(s, k, n, end, None)  # failedStageId, error, originalError


cdef list _payload_at(const unsigned char *s, Py_ssize_t i, Py_ssize_t n, result_cls, Py_ssize_t *end):
    """``s[i]`` is ``{``: the kept payload values by _K_ index (_ABSENT: not there; the last of a
    repeated key wins), every other value checked (``end``: after the payload)."""
    cdef list vals = [_ABSENT] * _K_N
    cdef int flags, key
    cdef Py_ssize_t j = 0, k
    i = _ws(s, i + 1, n)
    if i < n and s[i] == 125:
        end[0] = i + 1
        return vals
    while True:
        if i >= n or s[i] != 34:
            raise _Odd
        flags = 0
        j = _str_end(s, i, n, &flags)
        if j < 0 or flags:
            raise _Odd
        key = _payload_key(s, i, j)
        k = _ws(s, j, n)
        if k >= n or s[k] != 58:
            raise _Odd
        k = _ws(s, k + 1, n)
        if key < 0:
            j = _skip(s, k, n, 2)
            if j < 0:
                raise _Odd
        else:
            vals[key] = _payload_value(s, k, n, key, result_cls, &j)
        i = _ws(s, j, n)
        if i >= n:
            raise _Odd
        if s[i] == 44:
            i = _ws(s, i + 1, n)
        elif s[i] == 125:
            end[0] = i + 1
            return vals
        else:
            raise _Odd


cdef inline object _have(object v, object missing):
    return missing if v is _ABSENT else v


cdef object _event(const unsigned char *s, Py_ssize_t n, state_cls, result_cls):
    """``state_from_event`` of the ``n`` bytes at ``s`` (raises _Odd to decline)."""
    cdef Py_ssize_t i, j = 0, k, ta = -1, tb = -1
    cdef int flags = 0
    cdef list vals = None
    i = _ws(s, 0, n)
    if i >= n or s[i] != 123:
        raise _Odd
    i = _ws(s, i + 1, n)
    while True:  # the envelope: its type and payload kept, the rest checked
        if i >= n or s[i] != 34:
            raise _Odd
        j = _str_end(s, i, n, &flags)
        if j < 0 or flags:
            raise _Odd
        k = _ws(s, j, n)
        if k >= n or s[k] != 58:
            raise _Odd
        k = _ws(s, k + 1, n)
        if _key(s, i, j, b"payload", 7):
            if k < n and s[k] == 123:
                vals = _payload_at(s, k, n, result_cls, &j)
            else:  # not an object: declined, unless a later payload replaces it
                vals = None
                j = _skip(s, k, n, 1)
        elif _key(s, i, j, b"type", 4):
            j = _skip(s, k, n, 1)
            ta, tb = k, j
        else:
            j = _skip(s, k, n, 1)
        if j < 0:
            raise _Odd
        i = _ws(s, j, n)
        if i >= n:
            raise _Odd
        if s[i] == 44:
            i = _ws(s, i + 1, n)
        elif s[i] == 125:
            break
        else:
            raise _Odd
    if _ws(s, i + 1, n) != n or vals is None or ta < 0 or s[ta] != 34:
        raise _Odd
    wid = vals[_K_WID]
    iid = vals[_K_IID]
    if wid is _ABSENT or iid is _ABSENT:
        raise _Odd
    results = _have(vals[_K_RESULTS], [])
    version = _have(vals[_K_SEQ], 0)
    if _key(s, ta, tb, b"WorkflowCompletedEvent", 22):
        end = vals[_K_END]
        start = vals[_K_START]
        if end is _ABSENT or start is _ABSENT:
            raise _Odd
        return _COMPLETED, state_cls(wid, iid, "completed", None, results, _have(vals[_K_FINAL], {}), start,
                                     end, end, None, version)
    if _key(s, ta, tb, b"WorkflowFailedEvent", 19):
        end = vals[_K_FAILURE]
        start = vals[_K_START]
        if end is _ABSENT or start is _ABSENT:
            raise _Odd
        return _FAILED, state_cls(wid, iid, "failed", _have(vals[_K_FAILED_STAGE], None), results,
                                  _have(vals[_K_STATE_DATA], {}), start, end, end, _have(vals[_K_ERROR], None),
                                  version)
    if _key(s, ta, tb, b"WorkflowCompensatedEvent", 24):
        end = vals[_K_FAILURE]
        last = vals[_K_COMP_END]
        if end is _ABSENT or last is _ABSENT:
            raise _Odd
        return _COMPENSATED, state_cls(wid, iid, "compensated", None, results, _have(vals[_K_WF_DATA], {}), 0,
                                       end, last, _have(vals[_K_ORIG_ERROR], None), version)
    raise _Odd


def state_from_event(body, state_cls, result_cls):
    """A heard terminal event's body (the envelope's JSON bytes) as ``(type name, state_cls(...))``
    (its StageResults as ``result_cls(...)``), equal to ``orjson.loads`` + ``_waiting.state_from_event``;
    None when it is not the plain form (see the twin), the caller then takes that path."""
    cdef Py_buffer view
    try:
        if body.__class__ is bytes:
            return _event(<const unsigned char *>PyBytes_AS_STRING(body), PyBytes_GET_SIZE(body),
                          state_cls, result_cls)
        try:
            PyObject_GetBuffer(body, &view, PyBUF_SIMPLE)
        except TypeError:
            return None
        try:
            return _event(<const unsigned char *>view.buf, view.len, state_cls, result_cls)
        finally:
            PyBuffer_Release(&view)
    except _Odd:
        return None
