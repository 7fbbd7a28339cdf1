"""Why a message could not be turned into its wire form: the slow path behind the named errors of
``outgoing.build``.

The compiled encoders raise builtins (ValueError, TypeError, ...) or a bare ContractError; checking
every argument up front would slow every publish. So ``build`` lets the encoder fail and only then
asks :func:`wire_error` which argument was at fault: a property that is not a short string
(message id, correlation id, reply address, type name), a header name or value the AMQP table or
the JSON body cannot carry, or else the payload (PayloadEncodeError with the field path).
"""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from mmate_fast import _checks
from mmate_fast._ext import load
from mmate_fast.contracts._diagnose import find_problem, payload_error
from mmate_fast.errors import InvalidArgumentError, MmateError, PayloadEncodeError

_frames = load("frames")
_LABELS = {"id": "message id", "correlation_id": "correlation id", "reply_to": "reply address (reply_to)",
           "type": "message type name"}


def _header_problem(headers: Mapping[Any, Any]) -> InvalidArgumentError | None:
    for key, value in headers.items():
        if not isinstance(key, str):
            return InvalidArgumentError(f"header names must be str, not {type(key).__qualname__} ({key!r})",
                                        "headers")
        arg = f"headers[{key[:40]!r}]"
        try:
            _checks.short_str(key, arg, "header name")
        except InvalidArgumentError as exc:
            return exc
        plain = value.value if hasattr(value, "tag") and hasattr(value, "value") else value  # a Typed
        found = find_problem(plain, arg)
        if found is not None:
            return InvalidArgumentError(f"header {key[:40]!r}: {found[1]}", arg)
        try:
            _frames.encode_table({key: value})
        except (ValueError, TypeError, OverflowError) as exc:
            return InvalidArgumentError(f"header {key[:40]!r} cannot travel in an AMQP field table: {exc}",
                                        arg)
    return None


def wire_error(exc: BaseException, msg: Any, type_name: str, strings: Mapping[str, Any],
               headers: Mapping[Any, Any] | None) -> MmateError:
    """The named error for ``exc``, raised while encoding ``msg``: ``strings`` are the short-string
    properties by argument name (``id``, ``correlation_id``, ``reply_to``, ...), ``headers`` all
    headers of the message (None: not known)."""
    if isinstance(exc, InvalidArgumentError | PayloadEncodeError):
        return exc
    for argument, value in strings.items():
        if value is not None:
            try:
                _checks.short_str(value, argument, _LABELS.get(argument, argument))
            except InvalidArgumentError as refused:
                return refused
    if headers:
        refused_header = _header_problem(headers)
        if refused_header is not None:
            return refused_header
    return payload_error(msg, type_name, exc)


__all__ = ["wire_error"]
