# cython: language_level=3, annotation_typing=False, boundscheck=False, wraparound=False
"""Compiled per-class payload readers (twin: mmate_fast/_py/payload_reader.py; contract:
mmate_fast/_cy/payload_reader.pyi).

The hot path of a typed consume: the fields read straight from the envelope's raw payload bytes
(``decode_envelope``; else one dict lookup per field), the common JSON types checked in C, and for
a plain dataclass the attributes of a bare instance set in field order as its ``__init__`` sets
them (no ``cls(**kw)``, no keyword dict). Anything unusual (a key that matches only case-insensitively, a required key that is
missing, a value that needs converting) goes through the same hooks as the twin, so the errors and
the decoded values are the same.
"""
from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_FromStringAndSize, PyBytes_GET_SIZE
from cpython.dict cimport PyDict_CheckExact, PyDict_SetItem, PyDict_Size
from cpython.float cimport PyFloat_FromDouble
from cpython.long cimport PyLong_FromLongLong
from cpython.mem cimport PyMem_Free, PyMem_Malloc
from cpython.ref cimport Py_INCREF, Py_XDECREF, PyObject
from libc.stdint cimport int64_t
from libc.string cimport memchr, memcmp, memcpy, memset

from mmate_fast._cy.envelope cimport Envelope

from orjson import loads as _loads


cdef extern from "Python.h":
    PyObject* PyDict_GetItemWithError(object d, object key) except? NULL
    dict _PyDict_NewPresized(Py_ssize_t minused)
    int PyObject_GenericSetAttr(object o, object name, object value) except -1
    object PyUnicode_New(Py_ssize_t size, Py_UCS4 maxchar)
    unsigned char* PyUnicode_1BYTE_DATA(object o)
    double PyOS_string_to_double(const char* s, char** endptr, object overflow_exception) except? -1.0


cdef extern from *:
    """
    /* object.__new__(cls) (a plain dataclass: no __new__ of its own); its attributes are then set
       with object.__setattr__ in field order, as the dataclass __init__ sets them */
    static PyObject* mmate_bare_instance(PyObject* cls) {
        PyObject* args = PyTuple_New(0);
        PyObject* obj;
        if (args == NULL) return NULL;
        obj = PyBaseObject_Type.tp_new((PyTypeObject*)cls, args, NULL);
        Py_DECREF(args);
        return obj;
    }
    """
    object mmate_bare_instance(object cls)

TAGS = ("any", "str", "bool", "int", "float", "call")
MODES = ("default", "zero", "required")
ENVELOPE_SOURCES = ("", "id", "type", "timestamp", "timestamp_dt", "correlationId")

cdef enum:
    T_ANY = 0
    T_STR = 1
    T_BOOL = 2
    T_INT = 3
    T_FLOAT = 4
    T_CALL = 5

cdef enum:
    M_DEFAULT = 0
    M_ZERO = 1
    M_REQUIRED = 2

cdef enum:
    E_NONE = 0
    E_ID = 1
    E_TYPE = 2
    E_TS = 3
    E_TS_DT = 4
    E_CID = 5

cdef object _M = object()

# The decoded values of one decode: a C array of owned references, one per field (NULL: missing; the
# raw path also keeps a JSON null as None until the required check); on the stack up to
# STACK_FIELDS fields. Not kept on the reader: a converter may decode a nested value of the same
# class with it (recursive contracts).
DEF STACK_FIELDS = 32


cdef inline PyObject** _vals_new(PyObject** stack, Py_ssize_t nf) except NULL:
    cdef PyObject** vals = stack
    if nf > STACK_FIELDS:
        vals = <PyObject**>PyMem_Malloc(nf * sizeof(PyObject*))
        if vals == NULL:
            raise MemoryError()
    memset(vals, 0, nf * sizeof(PyObject*))
    return vals


cdef inline void _vals_free(PyObject** vals, PyObject** stack, Py_ssize_t nf) noexcept:
    cdef Py_ssize_t i
    for i in range(nf):
        Py_XDECREF(vals[i])
    if vals != stack:
        PyMem_Free(vals)


cdef inline void _vals_set(PyObject** vals, Py_ssize_t i, object v) noexcept:
    """vals[i] = v (a new reference; the one it replaces is released)."""
    cdef PyObject* old = vals[i]
    Py_INCREF(v)
    vals[i] = <PyObject*>v
    Py_XDECREF(old)


cdef class _Field:
    cdef object attr, wire, conv, fp, default, factory
    cdef bytes wire_b  # the wire name's UTF-8 (matched against the raw payload's keys)
    cdef int tag, mode, env
    cdef bint body


# ---- the raw payload (Envelope.raw_payload: a JSON object in the strict plain subset)
DEF MAX_INT_LEN = 18  # digits (and sign) of an integer read here: always within int64
DEF MAX_FLOAT_LEN = 40


cdef inline Py_ssize_t _ws(const unsigned char* p, Py_ssize_t i, Py_ssize_t n) noexcept nogil:
    while i < n and (p[i] == 32 or p[i] == 10 or p[i] == 13 or p[i] == 9):
        i += 1
    return i


cdef inline bint _digit(unsigned char c) noexcept nogil:
    return 48 <= c <= 57


cdef inline Py_ssize_t _plain_str_end(const unsigned char* p, Py_ssize_t i, Py_ssize_t n) noexcept nogil:
    """p[i] is the first byte inside a string: the index of its closing quote (-1: none). The raw
    payload is in the strict plain subset (``decode_envelope`` checked it: no escapes), so the
    next quote ends the string."""
    cdef const void* q = memchr(p + i, 34, n - i)
    return -1 if q == NULL else <const unsigned char*>q - p


cdef Py_ssize_t _nested_end(const unsigned char* p, Py_ssize_t i, Py_ssize_t n) noexcept nogil:
    """p[i] opens an object or array: the index after its end (strings without escapes), else -1."""
    cdef Py_ssize_t depth = 0
    cdef unsigned char c
    while i < n:
        c = p[i]
        if c == 34:
            i = _plain_str_end(p, i + 1, n)
            if i < 0:
                return -1
        elif c == 123 or c == 91:
            depth += 1
        elif c == 125 or c == 93:
            depth -= 1
            if depth == 0:
                return i + 1
        i += 1
    return -1


cdef inline bint _word(const unsigned char* p, Py_ssize_t i, Py_ssize_t n, const char* w,
                       Py_ssize_t k) noexcept nogil:
    return i + k <= n and memcmp(p + i, w, k) == 0


cdef class PayloadReader:
    """Decodes one dataclass from its payload dict (see the .pyi)."""

    cdef readonly object cls
    cdef readonly bint top
    cdef readonly bint direct
    cdef tuple _fields
    cdef Py_ssize_t _nfields
    cdef object _conv_error, _bad, _fail, _fold, _absent, _missing, _parse_ts, _zero
    cdef object _last_ts, _last_dt  # parse_ts of the last timestamp (messages share whole seconds)
    cdef bint _has_env  # a field takes its value from the envelope (id, type, timestamp, ...)
    cdef Py_ssize_t* _next  # raw keys: the field whose key followed field i - 1 last time (0: first)
    cdef const char** _wire_p  # field i's wire name (UTF-8, kept alive by its _Field.wire_b)
    cdef Py_ssize_t* _wire_n  # its length; -1: not a body field

    def __dealloc__(self):
        PyMem_Free(self._next)
        PyMem_Free(self._wire_p)
        PyMem_Free(self._wire_n)

    def __init__(self, cls, fields, *, top, direct, hooks):
        cdef _Field f
        cdef list out = []
        for spec in fields:
            attr, wire, tag, conv, mode, fp, default, factory, env = spec
            if not isinstance(attr, str) or (wire is not None and not isinstance(wire, str)):
                raise TypeError(f"field attr and wire name must be str, got {attr!r}, {wire!r}")
            if tag not in TAGS:
                raise ValueError(f"unknown field tag {tag!r} (one of {TAGS})")
            if mode not in MODES:
                raise ValueError(f"unknown field mode {mode!r} (one of {MODES})")
            if env not in ENVELOPE_SOURCES or (env and not top):
                raise ValueError(f"envelope source {env!r} of field {attr!r} (top={top})")
            if tag in ("int", "float", "call") and not callable(conv):
                raise TypeError(f"field {attr!r} with tag {tag!r} needs a converter")
            f = _Field.__new__(_Field)
            f.attr = attr
            f.wire = wire
            f.body = wire is not None
            f.wire_b = wire.encode() if wire is not None else None
            f.tag = TAGS.index(tag)
            f.conv = conv
            f.mode = MODES.index(mode)
            f.fp = fp
            f.default = default
            f.factory = factory
            f.env = ENVELOPE_SOURCES.index(env)
            out.append(f)
        self.cls = cls
        self.top = bool(top)
        self.direct = bool(direct)
        self._fields = tuple(out)
        self._nfields = len(out)
        self._conv_error = hooks["conv_error"]
        self._bad = hooks["bad"]
        self._fail = hooks["fail"]
        self._fold = hooks["fold"]
        self._absent = hooks["absent"]
        self._missing = hooks["missing"]
        self._parse_ts = hooks["parse_ts"]
        self._zero = hooks["zero"]
        self._last_ts = None
        self._last_dt = None
        self._has_env = any((<_Field>f).env != E_NONE for f in out)
        self._next = <Py_ssize_t*>PyMem_Malloc((self._nfields + 1) * sizeof(Py_ssize_t))
        self._wire_p = <const char**>PyMem_Malloc((self._nfields + 1) * sizeof(const char*))
        self._wire_n = <Py_ssize_t*>PyMem_Malloc((self._nfields + 1) * sizeof(Py_ssize_t))
        if self._next == NULL or self._wire_p == NULL or self._wire_n == NULL:
            raise MemoryError()
        for i in range(self._nfields + 1):
            self._next[i] = i
        for i in range(self._nfields):
            f = <_Field>out[i]
            if f.body:
                self._wire_p[i] = PyBytes_AS_STRING(f.wire_b)
                self._wire_n[i] = PyBytes_GET_SIZE(f.wire_b)
            else:
                self._wire_p[i] = NULL
                self._wire_n[i] = -1

    def __repr__(self):
        return (f"PayloadReader({self.cls.__qualname__}, {self._nfields} fields, "
                f"top={self.top}, direct={self.direct})")

    def decode(self, p, id, type, timestamp, correlation_id):
        """The message from its envelope (``p``: the payload dict, checked by the caller)."""
        if not PyDict_CheckExact(p):
            raise TypeError(f"payload must be a dict, not {(<object>p).__class__.__name__}")
        return self._read(<dict>p, True, id, type, timestamp, correlation_id)

    def decode_envelope(self, env):
        """The message from a decoded envelope: read straight from ``env.raw_payload`` when it has
        nothing the dict path would treat differently, else from ``env.payload`` as ``decode``. The
        compiled Envelope's fields are read from its struct (cimported), any other envelope's
        (the twin's, a subclass) by attribute."""
        cdef Envelope e
        if type(env) is Envelope:
            e = <Envelope>env
            if e._raw_payload is not None:
                msg = self._raw(e._raw_payload, e.id, e.type, e.timestamp, e.correlation_id)
                if msg is not _M:
                    return msg
            p = e.payload
            if not PyDict_CheckExact(p):
                raise TypeError(f"payload must be a dict, not {(<object>p).__class__.__name__}")
            return self._read(<dict>p, True, e.id, e.type, e.timestamp, e.correlation_id)
        raw = getattr(env, "raw_payload", None)
        if type(raw) is bytes:
            msg = self._raw(<bytes>raw, env.id, env.type, env.timestamp, env.correlation_id)
            if msg is not _M:
                return msg
        p = env.payload
        if not PyDict_CheckExact(p):
            raise TypeError(f"payload must be a dict, not {(<object>p).__class__.__name__}")
        return self._read(<dict>p, True, env.id, env.type, env.timestamp, env.correlation_id)

    def decode_nested(self, v):
        """A nested value: ``v`` must be a dict (else ConvError "expected object")."""
        if not PyDict_CheckExact(v):
            raise self._bad("object", v)
        return self._read(<dict>v, False, None, None, None, None)

    cdef object _check(self, _Field f, object v):
        """The payload value ``v`` (not None) of field ``f``, checked or converted."""
        cdef int tag = f.tag
        cls = type(v)
        if tag == T_STR:
            if cls is not str:
                self._fail(self.cls, f.attr, f.wire, self._bad("string", v))
            return v
        if tag == T_ANY:
            return v
        if tag == T_BOOL:
            if cls is not bool:
                self._fail(self.cls, f.attr, f.wire, self._bad("bool", v))
            return v
        if tag == T_INT and cls is int:
            return v
        if tag == T_FLOAT and cls is float:
            return v
        try:
            return f.conv(v)
        except Exception as e:
            if isinstance(e, self._conv_error):
                self._fail(self.cls, f.attr, f.wire, e)
            raise

    cdef object _read(self, dict p, bint top, object id, object type, object ts, object cid):
        cdef Py_ssize_t i, n = 0, nf = self._nfields
        cdef _Field f
        cdef PyObject* hit
        cdef PyObject* stack[STACK_FIELDS]
        cdef PyObject** vals = _vals_new(stack, nf)
        cdef bint complete = True
        try:
            for i in range(nf):
                f = <_Field>self._fields[i]
                if not f.body:
                    continue
                hit = PyDict_GetItemWithError(p, f.wire)
                if hit is NULL:
                    complete = False
                    continue
                n += 1
                if <object>hit is None:
                    complete = False
                    continue
                _vals_set(vals, i, self._check(f, <object>hit))
            if n != PyDict_Size(p) or (not complete and self._needs_slow(vals)):
                return self._slow(p, vals, n, top, id, type, ts, cid)
            return self._finish(vals, top, id, type, ts, cid)
        finally:
            _vals_free(vals, stack, nf)

    cdef inline Py_ssize_t _match(self, const unsigned char* k, Py_ssize_t kl, Py_ssize_t last) noexcept:
        """The index of the body field whose wire name is exactly k[:kl] (the one that followed
        field ``last`` last time is tried first), or -1 (C arrays only: no object touched)."""
        cdef Py_ssize_t i = self._next[last + 1], j
        if i < self._nfields and self._wire_n[i] == kl and memcmp(self._wire_p[i], k, kl) == 0:
            return i
        for j in range(self._nfields):
            if self._wire_n[j] == kl and memcmp(self._wire_p[j], k, kl) == 0:
                self._next[last + 1] = j
                return j
        return -1

    cdef object _raw(self, bytes raw, object id, object type, object ts, object cid):
        """The message read from the payload object's JSON bytes, each value made as orjson makes
        it and then checked as ``_read`` checks it (same order, same hooks); ``_M`` (nothing done)
        for anything ``_read`` would treat differently: a key that is not exactly a field's wire
        name, a duplicate key, a required field missing or null, a value outside the plain subset.
        ``id`` ... ``cid``: the envelope's fields."""
        cdef Py_ssize_t nf = self._nfields
        cdef PyObject* stack[STACK_FIELDS]
        cdef PyObject** vals = _vals_new(stack, nf)
        try:
            if not self._raw_values(<const unsigned char*>PyBytes_AS_STRING(raw),
                                    PyBytes_GET_SIZE(raw), vals):
                return _M
            if not self._raw_checked(vals):
                return _M
            return self._finish(vals, True, id, type, ts, cid)
        finally:
            _vals_free(vals, stack, nf)

    cdef bint _raw_checked(self, PyObject** vals) except -1:
        """One pass in field order: a required field missing or null declines (False: the dict
        path decides, as ``_read``'s slow path); another null becomes missing; every value is
        checked as ``_read`` checks it (the common exact types in line, else ``_check``)."""
        cdef Py_ssize_t i
        cdef _Field f
        cdef PyObject* o
        cdef int tag
        for i in range(self._nfields):
            o = vals[i]
            if o == NULL or o == <PyObject*>None:
                if self._wire_n[i] >= 0 and (<_Field>self._fields[i]).mode == M_REQUIRED:
                    return False
                if o != NULL:
                    vals[i] = NULL
                    Py_XDECREF(o)
                continue
            f = <_Field>self._fields[i]
            tag = f.tag
            cls = type(<object>o)
            if tag == T_ANY or (tag == T_STR and cls is str) or (tag == T_INT and cls is int) \
                    or (tag == T_FLOAT and cls is float) or (tag == T_BOOL and cls is bool):
                continue  # what _check returns unchanged
            _vals_set(vals, i, self._check(f, <object>o))
        return True

    cdef bint _raw_values(self, const unsigned char* p, Py_ssize_t n, PyObject** vals) except -1:
        """The payload object's values by field (new references into ``vals``; a JSON null as
        None); False (``_raw`` declines) for anything outside what ``_raw`` reads."""
        cdef Py_ssize_t i, j, k, ka, kb, va, vb, last = -1
        cdef bint neg
        cdef int64_t iv
        cdef unsigned char c
        cdef char num[MAX_FLOAT_LEN + 1]
        if n < 2 or p[0] != 123:
            return False
        i = _ws(p, 1, n)
        if i < n and p[i] == 125:
            i += 1
        else:
            while True:
                if i >= n or p[i] != 34:
                    return False
                ka = i + 1
                kb = _plain_str_end(p, ka, n)
                if kb < 0:
                    return False
                i = _ws(p, kb + 1, n)
                if i >= n or p[i] != 58:
                    return False
                va = _ws(p, i + 1, n)
                k = self._match(p + ka, kb - ka, last)
                if k < 0 or vals[k] != NULL:
                    return False  # an unknown or case-folded key, or a duplicate: the dict path
                if va >= n:
                    return False
                c = p[va]
                if c == 34:
                    vb = _plain_str_end(p, va + 1, n)
                    if vb < 0:
                        return False
                    v = PyUnicode_New(vb - va - 1, 127)
                    memcpy(PyUnicode_1BYTE_DATA(v), p + va + 1, vb - va - 1)
                    vb += 1
                elif c == 116 and _word(p, va, n, b"true", 4):
                    v = True
                    vb = va + 4
                elif c == 102 and _word(p, va, n, b"false", 5):
                    v = False
                    vb = va + 5
                elif c == 110 and _word(p, va, n, b"null", 4):
                    v = None
                    vb = va + 4
                elif c == 123 or c == 91:
                    vb = _nested_end(p, va, n)
                    if vb < 0:
                        return False
                    try:
                        v = _loads(PyBytes_FromStringAndSize(<const char*>p + va, vb - va))
                    except Exception:
                        return False
                else:
                    neg = c == 45
                    j = va + 1 if neg else va
                    if j >= n or not _digit(p[j]) or (p[j] == 48 and j + 1 < n and _digit(p[j + 1])):
                        return False
                    iv = 0
                    vb = j
                    while vb < n and _digit(p[vb]):
                        iv = iv * 10 + (p[vb] - 48)
                        vb += 1
                        if vb - va > MAX_INT_LEN:
                            return False
                    if vb < n and (p[vb] == 46 or p[vb] == 101 or p[vb] == 69):
                        if p[vb] != 46 or vb + 1 >= n or not _digit(p[vb + 1]):
                            return False
                        vb += 1
                        while vb < n and _digit(p[vb]):
                            vb += 1
                        if vb - va > MAX_FLOAT_LEN or (vb < n and (p[vb] == 101 or p[vb] == 69)):
                            return False
                        memcpy(num, p + va, vb - va)
                        num[vb - va] = 0
                        v = PyFloat_FromDouble(PyOS_string_to_double(num, NULL, None))
                    else:
                        v = PyLong_FromLongLong(-iv if neg else iv)
                Py_INCREF(v)
                vals[k] = <PyObject*>v
                last = k
                i = _ws(p, vb, n)
                if i >= n:
                    return False
                if p[i] == 44:
                    i = _ws(p, i + 1, n)
                    continue
                if p[i] != 125:
                    return False
                i += 1
                break
        return _ws(p, i, n) == n

    cdef object _finish(self, PyObject** vals, bint top, object id, object type, object ts, object cid):
        """The instance from the decoded body values (NULL: missing or null), the envelope fields,
        zero values and defaults (``_read``'s end, with no key left for the slow path)."""
        cdef Py_ssize_t i, nf = self._nfields
        cdef _Field f
        cdef dict d = None
        obj = None
        if self.direct:  # the instance at once, its attributes set in field order (as __init__ does)
            obj = mmate_bare_instance(self.cls)
        else:
            d = _PyDict_NewPresized(nf)
        for i in range(nf):
            f = <_Field>self._fields[i]
            if vals[i] != NULL:
                v = <object>vals[i]
            else:
                if f.env != E_NONE and top:
                    v = self._envelope(f, id, type, ts, cid)
                    if v is _M:
                        if not self.direct:
                            continue
                        v = f.factory() if f.factory is not None else f.default
                elif f.mode == M_ZERO and f.body:
                    try:
                        v = self._zero(f.fp)
                    except Exception as e:
                        if isinstance(e, self._conv_error):
                            self._fail(self.cls, f.attr, f.wire, e)
                        raise
                elif not self.direct:
                    continue
                else:
                    v = f.factory() if f.factory is not None else f.default
            if obj is not None:
                PyObject_GenericSetAttr(obj, f.attr, v)
            else:
                PyDict_SetItem(d, f.attr, v)
        if obj is not None:
            return obj
        return self._build(d)

    cdef bint _needs_slow(self, PyObject** vals):
        """A required field not decoded (missing or null): the slow path decides (``absent``)."""
        cdef Py_ssize_t i
        cdef _Field f
        for i in range(self._nfields):
            f = <_Field>self._fields[i]
            if f.body and f.mode == M_REQUIRED and vals[i] == NULL:
                return True
        return False

    cdef object _envelope(self, _Field f, object id, object type, object ts, object cid):
        if f.env == E_ID:
            return id
        if f.env == E_TYPE:
            return type
        if f.env == E_TS:
            return ts
        if f.env == E_TS_DT:
            if ts is self._last_ts or (self._last_ts is not None and ts == self._last_ts):
                return self._last_dt
            dt = self._parse_ts(ts)
            self._last_dt = dt
            self._last_ts = ts
            return dt
        if cid:  # E_CID: only a non-empty correlation id replaces the default
            return cid
        return _M

    cdef object _build(self, dict d):
        if not self.direct:
            return self.cls(**d)
        obj = mmate_bare_instance(self.cls)
        for k, v in d.items():
            PyObject_GenericSetAttr(obj, k, v)
        return obj

    cdef object _slow(self, dict p, PyObject** vals, Py_ssize_t n, bint top, object id, object type,
                      object ts, object cid):
        """The twin's order exactly: envelope fields and decoded values, the case-insensitive
        keys (``fold``), required keys (``absent``), zero values, then the defaults."""
        cdef Py_ssize_t i, nf = self._nfields
        cdef _Field f
        cdef dict kw = {}
        for i in range(nf):
            f = <_Field>self._fields[i]
            if f.body:
                if vals[i] != NULL:
                    kw[f.attr] = <object>vals[i]
            elif f.env != E_NONE and top:
                v = self._envelope(f, id, type, ts, cid)
                if v is not _M:
                    kw[f.attr] = v
        if n != PyDict_Size(p):
            self._fold(p, kw, self.cls, self._fail)
        for i in range(nf):
            f = <_Field>self._fields[i]
            if not f.body or f.attr in kw:
                continue
            if f.mode == M_REQUIRED:
                self._absent(p, kw, self.cls, f.fp, self._fail, self._missing)
            elif f.mode == M_ZERO:
                try:
                    kw[f.attr] = self._zero(f.fp)
                except Exception as e:
                    if isinstance(e, self._conv_error):
                        self._fail(self.cls, f.attr, f.wire, e)
                    raise
        if not self.direct:
            return self.cls(**kw)
        cdef dict d = {}
        for i in range(nf):
            f = <_Field>self._fields[i]
            v = kw.get(f.attr, _M)
            if v is _M:
                v = f.factory() if f.factory is not None else f.default
            d[f.attr] = v
        return self._build(d)


__all__ = ["ENVELOPE_SOURCES", "MODES", "TAGS", "PayloadReader"]
