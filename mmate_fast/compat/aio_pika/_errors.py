"""Translate mmate_fast's named errors into the aio-pika/aiormq exceptions users of the facade catch."""
from __future__ import annotations

from typing import Any

from pamqp import commands as spec

from mmate_fast import errors
from mmate_fast.compat.aio_pika import exceptions as exc

_BY_CODE: dict[int, type[exc.ChannelClosed]] = {
    403: exc.ChannelAccessRefused,
    404: exc.ChannelNotFoundEntity,
    405: exc.ChannelLockedResource,
    406: exc.ChannelPreconditionFailed,
}

#: connection.close codes -> the aiormq exception for them (args: the reply text)
_CONNECTION_BY_CODE: dict[int, type[exc.ConnectionClosed]] = {
    501: exc.ConnectionFrameError,
    502: exc.ConnectionSyntaxError,
    503: exc.ConnectionCommandInvalid,
    504: exc.ConnectionChannelError,
    505: exc.ConnectionUnexpectedFrame,
    506: exc.ConnectionResourceError,
    530: exc.ConnectionNotAllowed,
    540: exc.ConnectionNotImplemented,
    541: exc.ConnectionInternalError,
}


def translate(error: BaseException, channel: Any = None) -> BaseException:
    """The aio-pika exception for ``error`` (``error`` itself when aio-pika would raise it as is:
    timeouts, ValueError for arguments refused before the broker, ...)."""
    if isinstance(error, errors.ChannelClosedError):
        code, text = error.reply_code, error.reply_text
        if code == 200 or code is None or code == 0:
            return exc.ChannelInvalidStateError(f"{channel!r} closed")
        cls = _BY_CODE.get(code)
        if cls is not None:
            return cls(f"{text}" if text else str(error))
        return exc.ChannelClosed(code, text)
    if isinstance(error, errors.ChannelError) and not isinstance(error, errors.PublishError):
        return exc.ChannelInvalidStateError(str(error))
    if isinstance(error, errors.AuthenticationError):
        return exc.ProbableAuthenticationError(error.reply_text or str(error))
    if isinstance(error, errors.BrokerUnreachableError):
        return exc.AMQPConnectionError(str(error))
    if isinstance(error, errors.ConnectionClosedError):
        by_code = _CONNECTION_BY_CODE.get(error.reply_code or 0)
        if by_code is not None:
            return by_code(error.reply_text)
        return exc.ConnectionClosed(error.reply_code, error.reply_text or str(error))
    if isinstance(error, errors.OperationTimeout):
        return error
    if isinstance(error, errors.AMQPConnectionError):
        return exc.AMQPConnectionError(str(error))
    if isinstance(error, errors.PublishNackedError):
        return exc.DeliveryError(None, spec.Basic.Nack())
    return error


def raise_translated(error: BaseException, channel: Any = None) -> None:
    """Raise the aio-pika exception for ``error`` (chained to it for the traceback)."""
    new = translate(error, channel)
    if new is error:
        raise error
    raise new from error
