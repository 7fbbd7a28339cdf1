# cython: language_level=3
"""StageFlow's Go state codec, fast path, compiled (twin: ``mmate_fast/_py/flowstate.py``, which
documents the rules). Times are formatted and parsed in C (Go's UTC RFC3339Nano), strings are
checked for escapes in C, and the JSON-number check that guards orjson is one pass over the text;
whatever is not the plain form goes to the twin (times) or back to the caller's general path
(``None``), exactly as in the twin.
"""
from cpython.unicode cimport PyUnicode_READ, PyUnicode_KIND, PyUnicode_DATA, PyUnicode_GET_LENGTH

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


cdef inline int _digit(Py_UCS4 c):
    return <int>c - 48 if 48 <= c <= 57 else -1


cdef object _parse_fast(str text):
    """Go's own UTC form ``YYYY-MM-DDTHH:MM:SS[.f{1,9}]Z`` in C; None for anything else."""
    cdef Py_ssize_t n = PyUnicode_GET_LENGTH(text)
    if n < 20:
        return None
    cdef int kind = PyUnicode_KIND(text)
    cdef void *data = PyUnicode_DATA(text)
    cdef int vals[14]
    cdef int pos[14]
    pos[:] = [0, 1, 2, 3, 5, 6, 8, 9, 11, 12, 14, 15, 17, 18]
    cdef int i, dg
    for i in range(14):
        dg = _digit(PyUnicode_READ(kind, data, pos[i]))
        if dg < 0:
            return None
        vals[i] = dg
    if (PyUnicode_READ(kind, data, 4) != 45 or PyUnicode_READ(kind, data, 7) != 45
            or PyUnicode_READ(kind, data, 10) != 84 or PyUnicode_READ(kind, data, 13) != 58
            or PyUnicode_READ(kind, data, 16) != 58 or PyUnicode_READ(kind, data, n - 1) != 90):
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
    elif PyUnicode_READ(kind, data, 19) != 46 or nf < 1 or nf > 9:
        return None
    else:
        for i in range(nf):
            dg = _digit(PyUnicode_READ(kind, data, 20 + i))
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
    cdef bint in_str = False, esc = False
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
            run += 1
            if run >= 20:
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
