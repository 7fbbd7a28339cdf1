"""aio-pika's exception names (``aio_pika.exceptions``, which re-exports aiormq's), same hierarchy,
same constructor arguments, so ``except aio_pika.exceptions.X`` keeps working after the import change.

The facade raises these, translated from :mod:`mmate_fast.errors` by ``_errors.translate``: a broker
channel close 404 -> :class:`ChannelNotFoundEntity` (args: the reply text, as aiormq), 403/405/406 ->
:class:`ChannelAccessRefused` / :class:`ChannelLockedResource` / :class:`ChannelPreconditionFailed`,
other codes -> :class:`ChannelClosed` (code, text); a lost or closed connection ->
:class:`ConnectionClosed` (code, text); a nacked publish -> :class:`DeliveryError`; a returned
mandatory publish on a channel with ``on_return_raises=True`` -> :class:`PublishError`.
"""
from __future__ import annotations

import asyncio
from typing import Any


class AMQPError(Exception):
    """Base of every AMQP error (aiormq's ``AMQPError``)."""

    reason = "An unspecified AMQP error has occurred: %s"

    def __repr__(self) -> str:
        try:
            return f"<{type(self).__name__}: {self.reason % self.args}>"
        except TypeError:
            return f"<{type(self).__name__}: {self.args!r}>"


#: the older name, still exported by aio-pika
AMQPException = AMQPError


class AMQPConnectionError(AMQPError, ConnectionError):
    reason = "Unexpected connection problem"

    def __repr__(self) -> str:
        if self.args:
            return f"<{type(self).__name__}: {self.args!r}>"
        return AMQPError.__repr__(self)


class IncompatibleProtocolError(AMQPConnectionError):
    reason = "The protocol returned by the server is not supported"


class AuthenticationError(AMQPConnectionError):
    reason = ("Server and client could not negotiate use of the authentication mechanisms. Server "
              "supports only %r, but client supports only %r.")


class ProbableAuthenticationError(AMQPConnectionError):
    reason = "Client was disconnected at a connection stage indicating a probable authentication error: %s"


class ConnectionClosed(AMQPConnectionError):
    reason = "The AMQP connection was closed (%s) %s"


class ConnectionSyntaxError(ConnectionClosed):
    reason = "The sender sent a frame that contained illegal values for one or more fields: %r"


class ConnectionFrameError(ConnectionClosed):
    reason = "The sender sent a malformed frame that the recipient could not decode: %r"


class ConnectionCommandInvalid(ConnectionClosed):
    reason = "The client sent an invalid sequence of frames: %r"


class ConnectionChannelError(ConnectionClosed):
    reason = "The client attempted to work with a channel that had not been correctly opened: %r"


class ConnectionUnexpectedFrame(ConnectionClosed):
    reason = "The peer sent a frame that was not expected: %r"


class ConnectionResourceError(ConnectionClosed):
    reason = "The server could not complete the method because it lacked sufficient resources: %r"


class ConnectionNotAllowed(ConnectionClosed):
    reason = "The client tried to work with some entity in a manner that is prohibited by the server: %r"


class ConnectionNotImplemented(ConnectionClosed):
    reason = "The client tried to use functionality that is not implemented in the server: %r"


class ConnectionInternalError(ConnectionClosed):
    reason = "The server could not complete the method because of an internal error: %r"


class AMQPChannelError(AMQPError):
    reason = "An unspecified AMQP channel error has occurred"


class ChannelClosed(AMQPChannelError):
    reason = "The channel was closed (%s) %s"


class ChannelAccessRefused(ChannelClosed):
    reason = ("The client attempted to work with a server entity to which it has no access due to "
              "security settings: %r")


class ChannelNotFoundEntity(ChannelClosed):
    reason = "The client attempted to work with a server entity that does not exist: %r"


class ChannelLockedResource(ChannelClosed):
    reason = ("The client attempted to work with a server entity to which it has no access because "
              "another client is working with it: %r")


class ChannelPreconditionFailed(ChannelClosed):
    reason = "The client requested a method that was not allowed because some precondition failed: %r"


class DuplicateConsumerTag(ChannelClosed):
    reason = "The consumer tag specified already exists for this channel: %s"


class ProtocolSyntaxError(AMQPError):
    reason = "An unspecified protocol syntax error occurred"


class InvalidFrameError(ProtocolSyntaxError):
    reason = "Invalid frame received: %r"


class MethodNotImplemented(AMQPError):
    pass


class DeliveryError(AMQPError):
    """A publish the broker refused: ``frame`` is the ``Basic.Nack`` (or ``Basic.Return``),
    ``message`` the returned message or None."""

    reason = "Error when delivery message %r, frame %r"

    def __init__(self, message: Any, frame: Any, *args: Any) -> None:
        self.message = message
        self.frame = frame
        super().__init__(message, frame)

    def __str__(self) -> str:
        frame = self.frame
        name = getattr(frame, "name", type(frame).__name__)
        if hasattr(frame, "reply_code"):
            details = (f"reply_code={frame.reply_code!r}, reply_text={frame.reply_text!r}, "
                       f"exchange={frame.exchange!r}, routing_key={frame.routing_key!r}")
        elif hasattr(frame, "multiple"):
            details = f"delivery_tag={frame.delivery_tag!r}, multiple={frame.multiple!r}"
        elif hasattr(frame, "requeue"):
            details = f"delivery_tag={frame.delivery_tag!r}, requeue={frame.requeue!r}"
        else:
            details = ""
        return f"Message delivery failed: {name}({details})"

    def __repr__(self) -> str:
        return f"<{type(self).__name__}: {self}>"


class PublishError(DeliveryError):
    """A mandatory publish the broker returned (channel opened with ``on_return_raises=True``)."""

    reason = "%r for routing key %r"

    def __init__(self, message: Any, frame: Any, *args: Any) -> None:
        self.message = message
        self.frame = frame
        Exception.__init__(self, frame.reply_text, frame.routing_key, *args)


class ChannelInvalidStateError(RuntimeError):
    """A call on a channel that is closed (or not opened yet)."""


class MessageProcessError(AMQPError):
    reason = "%s: %r"


class QueueEmpty(AMQPError, asyncio.QueueEmpty):
    """``Queue.get()`` found no message (with ``fail=True``, the default)."""


#: what a robust connection treats as "the connection failed, try again"
CONNECTION_EXCEPTIONS: tuple[type[BaseException], ...] = (
    AMQPError, ConnectionError, OSError, RuntimeError, StopAsyncIteration)

__all__ = (
    "CONNECTION_EXCEPTIONS",
    "AMQPChannelError",
    "AMQPConnectionError",
    "AMQPError",
    "AMQPException",
    "AuthenticationError",
    "ChannelAccessRefused",
    "ChannelClosed",
    "ChannelInvalidStateError",
    "ChannelLockedResource",
    "ChannelNotFoundEntity",
    "ChannelPreconditionFailed",
    "ConnectionChannelError",
    "ConnectionClosed",
    "ConnectionCommandInvalid",
    "ConnectionFrameError",
    "ConnectionInternalError",
    "ConnectionNotAllowed",
    "ConnectionNotImplemented",
    "ConnectionResourceError",
    "ConnectionSyntaxError",
    "ConnectionUnexpectedFrame",
    "DeliveryError",
    "DuplicateConsumerTag",
    "IncompatibleProtocolError",
    "InvalidFrameError",
    "MessageProcessError",
    "MethodNotImplemented",
    "ProbableAuthenticationError",
    "ProtocolSyntaxError",
    "PublishError",
    "QueueEmpty",
)
