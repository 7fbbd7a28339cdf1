# cython: language_level=3, annotation_typing=False, boundscheck=False, wraparound=False
"""Compiled per-class payload readers (twin: mmate_fast/_py/payload_reader.py; contract:
mmate_fast/_cy/payload_reader.pyi).

The hot path of a typed consume: one dict lookup per field, the common JSON types checked in C,
and for a plain dataclass the instance's ``__dict__`` filled in field order (no ``cls(**kw)``, no
keyword dict). Anything unusual (a key that matches only case-insensitively, a required key that is
missing, a value that needs converting) goes through the same hooks as the twin, so the errors and
the decoded values are the same.
"""
from cpython.dict cimport PyDict_CheckExact, PyDict_SetItem, PyDict_Size
from cpython.ref cimport PyObject


cdef extern from "Python.h":
    PyObject* PyDict_GetItemWithError(object d, object key) except? NULL
    dict _PyDict_NewPresized(Py_ssize_t minused)


cdef extern from *:
    """
    /* object.__new__(cls) with ``d`` as its __dict__ (what a dataclass __init__ leaves behind) */
    static PyObject* mmate_instance_with_dict(PyObject* cls, PyObject* d) {
        PyObject* args = PyTuple_New(0);
        PyObject* obj;
        if (args == NULL) return NULL;
        obj = PyBaseObject_Type.tp_new((PyTypeObject*)cls, args, NULL);
        Py_DECREF(args);
        if (obj == NULL) return NULL;
        if (PyObject_GenericSetDict(obj, d, NULL) < 0) {
            Py_DECREF(obj);
            return NULL;
        }
        return obj;
    }
    """
    object mmate_instance_with_dict(object cls, object d)

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


cdef class _Field:
    cdef object attr, wire, conv, fp, default, factory
    cdef int tag, mode, env
    cdef bint body


cdef class PayloadReader:
    """Decodes one dataclass from its payload dict (see the .pyi)."""

    cdef readonly object cls
    cdef readonly bint top
    cdef readonly bint direct
    cdef tuple _fields
    cdef Py_ssize_t _nfields
    cdef object _conv_error, _bad, _fail, _fold, _absent, _missing, _parse_ts, _zero
    cdef object _last_ts, _last_dt  # parse_ts of the last timestamp (messages share whole seconds)

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

    def __repr__(self):
        return (f"PayloadReader({self.cls.__qualname__}, {self._nfields} fields, "
                f"top={self.top}, direct={self.direct})")

    def decode(self, p, id, type, timestamp, correlation_id):
        """The message from its envelope (``p``: the payload dict, checked by the caller)."""
        if not PyDict_CheckExact(p):
            raise TypeError(f"payload must be a dict, not {(<object>p).__class__.__name__}")
        return self._read(<dict>p, True, id, type, timestamp, correlation_id)

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
        cdef list vals = [_M] * nf
        cdef bint complete = True
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
            vals[i] = self._check(f, <object>hit)
        if n != PyDict_Size(p) or (not complete and self._needs_slow(vals)):
            return self._slow(p, vals, n, top, id, type, ts, cid)
        cdef dict d = _PyDict_NewPresized(nf)
        for i in range(nf):
            f = <_Field>self._fields[i]
            v = vals[i]
            if v is _M:
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
            PyDict_SetItem(d, f.attr, v)
        return self._build(d)

    cdef bint _needs_slow(self, list vals):
        """A required field not decoded (missing or null): the slow path decides (``absent``)."""
        cdef Py_ssize_t i
        cdef _Field f
        for i in range(self._nfields):
            f = <_Field>self._fields[i]
            if f.body and f.mode == M_REQUIRED and vals[i] is _M:
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
        return mmate_instance_with_dict(self.cls, d)

    cdef object _slow(self, dict p, list vals, Py_ssize_t n, bint top, object id, object type,
                      object ts, object cid):
        """The twin's order exactly: envelope fields and decoded values, the case-insensitive
        keys (``fold``), required keys (``absent``), zero values, then the defaults."""
        cdef Py_ssize_t i, nf = self._nfields
        cdef _Field f
        cdef dict kw = {}
        for i in range(nf):
            f = <_Field>self._fields[i]
            if f.body:
                if vals[i] is not _M:
                    kw[f.attr] = vals[i]
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
