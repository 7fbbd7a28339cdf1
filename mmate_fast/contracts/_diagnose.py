"""Find why a message payload cannot be encoded, and where: the slow path behind PayloadEncodeError.

The encoders stay as fast as they are; only after one of them failed does :func:`payload_error`
walk the message (dataclass fields, pydantic fields, mappings, sequences) to name the first value
JSON cannot carry as Go reads it: a value that contains itself, a non-str key, NaN/Inf (Go's
encoding/json refuses them), a str with lone surrogates, nesting deeper than the encoder allows, or
an object of a type the envelope codec does not know.
"""
from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterator, Mapping
from typing import Any

from mmate_fast._ext import load
from mmate_fast.contracts._types import is_pydantic_model
from mmate_fast.errors import ContractError, MmateError, PayloadEncodeError

_env = load("envelope")

#: the envelope codec's nesting limit, counted from the payload (the envelope adds two levels)
MAX_DEPTH = 252
_SCALARS = (str, int, float, bool, type(None))


def _children(value: Any, path: str) -> Iterator[tuple[Any, Any, str]]:
    """(key, child, path of child) of a container the payload encoder descends into."""
    if isinstance(value, Mapping):
        for k, v in value.items():
            yield k, v, f"{path}[{k!r}]"
    elif isinstance(value, list | tuple):
        for i, v in enumerate(value):
            yield i, v, f"{path}[{i}]"
    elif isinstance(value, set | frozenset):
        for v in value:
            yield None, v, f"{path}[...]"
    elif dataclasses.is_dataclass(value):
        for f in dataclasses.fields(value):
            yield f.name, getattr(value, f.name, None), f"{path}.{f.name}"
    else:  # a pydantic model
        for name in type(value).model_fields:
            yield name, getattr(value, name, None), f"{path}.{name}"


def _is_container(value: Any) -> bool:
    return (isinstance(value, Mapping | list | tuple | set | frozenset)
            or (dataclasses.is_dataclass(value) and not isinstance(value, type))
            or is_pydantic_model(type(value)))


def _leaf_problem(value: Any) -> str | None:
    if isinstance(value, float) and not math.isfinite(value):
        return (f"{value!r} is not a JSON number (Go's encoding/json refuses NaN and Inf): use None or a "
                "finite number")
    if isinstance(value, str):
        try:
            value.encode()
        except UnicodeEncodeError as exc:
            return f"str is not valid UTF-8 ({exc.reason} at position {exc.start})"
        return None
    if isinstance(value, _SCALARS):
        return None
    try:
        _env.encode_json(value)
    except MmateError as exc:
        return str(exc)
    except Exception as exc:  # any failure of a foreign type is the answer we look for
        return f"{type(exc).__name__}: {exc}"
    return None


def find_problem(value: Any, path: str) -> tuple[str, str] | None:
    """``(path, reason)`` of the first value under ``value`` that cannot be encoded, or None."""
    active: set[int] = set()
    # an explicit stack: a payload nested thousands of levels deep must not overflow ours
    stack: list[tuple[Any, str, int, Iterator[tuple[Any, Any, str]] | None]] = [(value, path, 0, None)]
    while stack:
        node, where, depth, it = stack.pop()
        if it is None:
            if not _is_container(node):
                problem = _leaf_problem(node)
                if problem is not None:
                    return where, problem
                continue
            if id(node) in active:
                return where, "refers to itself (a cycle): JSON cannot carry it; break the cycle"
            if depth > MAX_DEPTH:
                return where, f"is nested deeper than {MAX_DEPTH} levels, more than the JSON encoder allows"
            active.add(id(node))
            it = _children(node, where)
        for key, child, child_where in it:
            if isinstance(node, Mapping) and not isinstance(key, str):
                return where, (f"has a key of type {type(key).__qualname__} ({key!r}): JSON object keys "
                               "must be str; convert the key, e.g. str(key)")
            stack.append((node, where, depth, it))
            stack.append((child, child_where, depth + 1, None))
            break
        else:
            active.discard(id(node))
    return None


def payload_error(msg: Any, type_name: str, cause: BaseException | None = None) -> ContractError:
    """The PayloadEncodeError for a message whose payload failed to encode (``cause``: the
    encoder's error), naming the offending field's path when one is found. ``cause`` itself when
    it is a ContractError about something that is no message at all (a class, a number, ...)."""
    root: Any = msg
    if getattr(type(msg), "__mmate_generic__", False):  # a GenericMessage sends only its payload
        root, type_name = msg.payload, f"{type_name}.payload"
    elif not _is_container(msg) and isinstance(cause, ContractError):
        return cause
    found = find_problem(root, type_name)
    if found is not None:
        where, reason = found
        return PayloadEncodeError(f"cannot encode {where}: {reason}", reason, where)
    reason = str(cause) if cause is not None else "not encodable as Mmate JSON"
    return PayloadEncodeError(f"cannot encode {type_name}: {reason}", reason)


__all__ = ["MAX_DEPTH", "find_problem", "payload_error"]
