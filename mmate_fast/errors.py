"""Named exceptions of mmate_fast.

Every error that comes from the broker carries its AMQP ``reply_code`` and ``reply_text``; every
message says what to do next. Credentials never appear in any message.
"""
from __future__ import annotations


class MmateError(Exception):
    """Base class of every mmate_fast error."""


class InvalidURLError(MmateError, ValueError):
    """The connection URL cannot be parsed (scheme, port or query option is wrong)."""


class OperationTimeout(MmateError, TimeoutError):
    """An operation did not finish within its timeout."""


# --------------------------------------------------------------------------- connection level
class AMQPConnectionError(MmateError, ConnectionError):
    """The connection failed or was closed; ``reply_code``/``reply_text`` are the broker's when known."""

    def __init__(self, message: str, reply_code: int = 0, reply_text: str = "") -> None:
        super().__init__(message)
        self.reply_code = reply_code
        self.reply_text = reply_text


class BrokerUnreachableError(AMQPConnectionError):
    """TCP connect to the broker failed (refused, unroutable, DNS). Check host, port and that it runs."""


class TLSError(AMQPConnectionError):
    """The TLS handshake failed: the broker's certificate is not trusted by the CA (``cacertfile``),
    does not match the host name (or ``server_name_indication``), or the broker refused ours."""


class AuthenticationError(AMQPConnectionError):
    """The broker refused the credentials (ACCESS_REFUSED during the handshake)."""


class HandshakeTimeout(AMQPConnectionError, OperationTimeout):
    """The AMQP handshake did not complete within the connect timeout."""


class ConnectionClosedError(AMQPConnectionError):
    """The connection is closed (by us, by the broker with a reply code, or by the network)."""


class HeartbeatTimeout(ConnectionClosedError):
    """Nothing was heard from the broker for two heartbeat intervals; the connection was dropped."""


class FrameError(AMQPConnectionError):
    """The peer sent a corrupt, oversized or unexpected frame. ``reply_code`` is the AMQP code
    (501 frame-error, 502 syntax-error, 503 command-invalid, 505 unexpected-frame) the connection is
    closed with."""


class ConnectionBlockedError(AMQPConnectionError, OperationTimeout):
    """The broker blocked publishing (a resource alarm: memory or disk) and it stayed blocked longer
    than the caller waits, or the caller chose not to wait; ``reason`` is the broker's text."""

    def __init__(self, message: str, reply_code: int = 0, reply_text: str = "", reason: str = "") -> None:
        super().__init__(message, reply_code, reply_text)
        self.reason = reason


class ClientClosedError(MmateError):
    """The Client (or connection) was closed: create a new one instead of reusing it."""


# --------------------------------------------------------------------------- channel level
class ChannelError(MmateError):
    """A channel-level failure; only that channel is closed, the connection lives on."""

    def __init__(self, message: str, reply_code: int = 0, reply_text: str = "",
                 class_id: int = 0, method_id: int = 0) -> None:
        super().__init__(message)
        self.reply_code = reply_code
        self.reply_text = reply_text
        self.class_id = class_id
        self.method_id = method_id


class ChannelClosedError(ChannelError):
    """The channel is closed (by the broker with ``reply_code``, or by us)."""


class AccessRefusedError(ChannelClosedError):
    """403 ACCESS_REFUSED: the user may not do this on this resource."""


class NotFoundError(ChannelClosedError):
    """404 NOT_FOUND: exchange or queue does not exist (declare it first)."""


class ResourceLockedError(ChannelClosedError):
    """405 RESOURCE_LOCKED: the queue is exclusive to another connection."""


class PreconditionFailedError(ChannelClosedError):
    """406 PRECONDITION_FAILED: e.g. re-declare with other flags/arguments, or an unknown delivery tag."""


class NoChannelsAvailableError(ChannelError):
    """channel_max reached: close channels you do not use, or raise channel_max."""


class PublishError(ChannelError):
    """A published message was not accepted by the broker."""


class PublishNackedError(PublishError):
    """The broker answered basic.nack to a confirmed publish: the message was NOT stored."""


class PublishReturnedError(PublishError):
    """A mandatory publish could not be routed to any queue (basic.return; usually 312 NO_ROUTE)."""


class InvalidArgumentError(MmateError, ValueError):
    """An argument was refused before it reached the broker, because the broker would have closed
    the channel for it: a name or routing key longer than 255 bytes (or not encodable as UTF-8), a
    priority outside 0-255, a negative TTL or expiration, a header value the wire cannot carry.
    ``argument`` names the offending argument."""

    def __init__(self, message: str, argument: str = "") -> None:
        super().__init__(message)
        self.argument = argument


# --------------------------------------------------------------------------- messaging level
class EnvelopeError(MmateError, ValueError):
    """A message body is not a valid Mmate envelope (not JSON, wrong field types, ...).
    ``reason`` is a short machine-readable cause, used as the dead-letter reason header."""

    def __init__(self, message: str, reason: str = "malformed-envelope") -> None:
        super().__init__(message)
        self.reason = reason


class ContractError(MmateError, TypeError):
    """A message class or value does not fit the Mmate contract rules (bad field, unregistered
    type, payload that does not decode into the registered class)."""


class PayloadEncodeError(ContractError):
    """A message could not be encoded to JSON (a value refers to itself, an object JSON cannot
    carry, ...); ``reason`` says which, ``path`` where (e.g. ``OrderCreated.items[2].price``, empty
    when unknown)."""

    def __init__(self, message: str, reason: str = "", path: str = "") -> None:
        super().__init__(message)
        self.reason = reason or message
        self.path = path


class HandlerRegistrationError(MmateError, TypeError):
    """A handler was refused at registration: not callable, takes no or too many required
    arguments, or is already registered for that type."""


class InvalidPatternError(MmateError, ValueError):
    """A handler pattern is not an exact type, ``"*"``, ``"Prefix*"`` or ``"*Suffix"`` (one ``*``,
    only at either end)."""


class UnknownMessageTypeError(MmateError, LookupError):
    """No handler or registered class for the envelope ``type`` of a received message."""


class HandlerError(MmateError):
    """A message handler failed; the message was rejected (dead-lettered when a DLX is set)."""


# --------------------------------------------------------------------------- request / reply
class RequestTimeout(OperationTimeout):
    """No reply to a bridge request arrived within its timeout; the pending entry was removed (a
    reply arriving later is dropped and counted in ``bridge.stats.late_replies``)."""

    def __init__(self, message: str, type_name: str = "", timeout: float = 0.0,
                 correlation_id: str = "") -> None:
        super().__init__(message)
        self.type_name = type_name
        self.timeout = timeout
        self.correlation_id = correlation_id


class RemoteError(MmateError):
    """The responder answered a request with an error reply (Go ``contracts.ErrorReply``, the
    request/reply server's ``ErrorReply`` or any reply with ``success=false`` and
    ``errorCode``/``errorMessage``). ``code`` and ``message`` are the reply's; ``reply`` is the
    decoded reply itself (an ErrorReply, another Reply class, or a GenericMessage)."""

    def __init__(self, code: str, message: str, reply: object = None) -> None:
        super().__init__(f"{code}: {message}" if code else message)
        self.code = code
        self.error_code = code
        self.message = message
        self.reply = reply


class BridgeClosedError(MmateError):
    """The request/reply bridge was closed (or its reply consumer cancelled) while a request was
    waiting for its reply; send the request again on a connected client."""


# --------------------------------------------------------------------------- interceptors
class InterceptorError(MmateError):
    """An interceptor refused a message. ``reason`` is a short machine-readable cause: the subscriber
    uses it as the reject / dead-letter reason (``x-mmate-reason``)."""

    default_reason = "interceptor-error"

    def __init__(self, message: str, reason: str | None = None) -> None:
        super().__init__(message)
        self.reason = reason or self.default_reason


class SignatureError(InterceptorError):
    """A message's HMAC signature (``x-signature``) is missing, malformed or does not match its body."""

    default_reason = "bad-signature"


class ExpiredMessageError(InterceptorError):
    """A signed message is older than the verifier's ``max_age`` (or dated too far in the future):
    refused before it is decoded. Publish it again (a fresh message) if it is still wanted."""

    default_reason = "expired"


class ReplayedMessageError(InterceptorError):
    """A signed message id was already accepted on this queue within the verifier's ``max_age``: a
    replay, refused before it is decoded."""

    default_reason = "replayed"


class DecryptionError(InterceptorError):
    """An encrypted message does not decrypt (wrong or unknown key, tampered ciphertext or envelope
    fields), or a message that must be encrypted is not (reason ``not-encrypted``)."""

    default_reason = "bad-ciphertext"


class ValidationError(InterceptorError, ValueError):
    """A message failed validation (its ``validate()``, a registered validator or its model)."""

    default_reason = "validation-failed"


class SchemaValidationError(ValidationError):
    """A payload does not fit the JSON Schema of its contract (SchemaValidationInterceptor): on
    publish nothing is sent; on consume the message is dead-lettered with reason ``schema-invalid``.
    ``type_name`` is the contract, ``detail`` the validator's message (where and what)."""

    default_reason = "schema-invalid"

    def __init__(self, message: str, type_name: str = "", detail: str = "") -> None:
        super().__init__(message)
        self.type_name = type_name
        self.detail = detail


class HandlerTimeout(InterceptorError, OperationTimeout):
    """A handler did not finish within its timeout and was cancelled."""

    default_reason = "handler-timeout"


class DuplicateMessage(InterceptorError):
    """A message id was seen before (raised only by a deduplication store used in ``raise`` mode)."""

    default_reason = "duplicate"


class ConfigurationError(MmateError, ValueError):
    """An interceptor or option was configured with an invalid value (never echoes secrets)."""


class FleetTargetError(ConfigurationError):
    """``mmate run module:attr``: the module does not import, has no such attribute, or the attribute
    is neither a Client nor a zero-argument factory returning one (the message says which)."""


class FleetCrashLoopError(MmateError):
    """A worker of a fleet crashed again and again right after starting: the supervisor gave up
    (the message names the worker, its exit code and how often it was restarted)."""


# --------------------------------------------------------------------------- reliability
class CircuitOpenError(MmateError):
    """A circuit breaker is open: the call was not attempted. Wait for ``retry_after`` seconds (the
    breaker then lets a few trial calls through). As a handler failure its reason is ``circuit-open``."""

    reason = "circuit-open"

    def __init__(self, message: str, retry_after: float = 0.0) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class RetryExhaustedError(MmateError):
    """A retry policy gave up; ``attempts`` were made, ``__cause__`` is the last failure."""

    def __init__(self, message: str, attempts: int = 0) -> None:
        super().__init__(message)
        self.attempts = attempts


class SchedulingError(MmateError, ValueError):
    """A scheduled publish was asked with a bad time (neither/both of ``delay``/``at``, negative delay)."""


# --------------------------------------------------------------------------- StageFlow
class FlowError(MmateError):
    """Base class of the StageFlow errors (workflows, their wire form, their state store)."""


class FlowWireError(FlowError, ContractError):
    """A StageFlow message or event does not have the shape Go's StageFlow gives it (a field of the
    wrong JSON type, a time that is not RFC 3339); the message names the field. It is a ContractError,
    so a consumer dead-letters such a message with reason ``contract-error`` and goes on."""

    reason = "flow-wire"


class FlowStateError(FlowWireError):
    """A ``serializedWorkflowState`` (or ``serializedOriginalResult``) string is not a Go
    WorkflowState (StageResult) JSON object: not JSON, a key of the wrong type, missing ids. The
    message says which key; the stage message cannot be processed and belongs in the DLQ."""

    reason = "flow-state"


# --------------------------------------------------------------------------- broker administration
class ManagementAPIError(MmateError):
    """The RabbitMQ management HTTP API answered with an error (wrong credentials, unknown vhost, not
    the API, the API of another broker); ``status`` is the HTTP status (0 when there is none), ``url``
    the API's address without credentials."""

    def __init__(self, message: str, status: int = 0, url: str = "") -> None:
        super().__init__(message)
        self.status = status
        self.url = url


class ManagementAPIUnreachableError(ManagementAPIError, ConnectionError):
    """Nothing answered at the management API's address (refused, unknown host, timeout): the plugin
    is off (``rabbitmq-plugins enable rabbitmq_management``) or the address is wrong."""


# --------------------------------------------------------------------------- test helpers
class ObservationTimeout(OperationTimeout, AssertionError):
    """A test helper of ``mmate_fast.testing`` waited for something that did not happen in time (a
    message published, a fed message handled); an AssertionError too, so pytest reports a failed
    expectation. The message says what was seen instead."""


# --------------------------------------------------------------------------- StageFlow state store
class FlowStoreError(FlowError):
    """A StageFlow state store operation failed (the database refused or lost it); the message says
    which operation and what to do. The backend's own exception is the ``__cause__``."""


class FlowStoreUnavailableError(FlowStoreError, ConnectionError):
    """The StageFlow state store cannot be opened or reached (file not writable, database down,
    wrong address); ``url`` is its address without password."""

    def __init__(self, message: str, url: str = "") -> None:
        super().__init__(message)
        self.url = url


class FlowStoreClosedError(FlowStoreError):
    """The StageFlow state store was closed: open a new one with ``open_store(url)``."""


class FlowNotFoundError(FlowStoreError, LookupError):
    """No workflow instance with this id is in the StageFlow state store."""
# --------------------------------------------------------------------------- StageFlow engine
class WorkflowDefinitionError(FlowError, ValueError):
    """A workflow definition cannot run (duplicate stage id, unknown or later dependency, empty
    workflow, bad timeout/retry/parallel group): fix the definition; raised when it is made."""


class FlowEngineError(FlowError):
    """A StageFlow message an engine cannot process; ``reason`` is the dead-letter reason header
    (``x-mmate-reason``) the message is kept under in ``dlq.{queue}``."""

    reason = "flow-error"

    def __init__(self, message: str, reason: str | None = None) -> None:
        super().__init__(message)
        if reason is not None:
            self.reason = reason


class BadFlowMessageError(FlowEngineError, ValueError):
    """A StageFlow message that cannot be processed as it is: a corrupt ``serializedWorkflowState``
    (reason ``bad-flow-state``), ids that do not match, a flow that is not running, the wrong envelope
    type for its queue, a stage to compensate that the workflow does not have."""

    reason = "bad-flow-message"


class UnknownWorkflowError(FlowEngineError, LookupError):
    """A StageFlow message names a workflow this engine has not registered (or does not match the
    queue it came on): register the workflow with ``FlowEngine.register`` in the serving process."""

    reason = "unknown-workflow"


class StageIndexError(FlowEngineError, IndexError):
    """A stage message's ``currentStageIndex`` is out of range or does not match the queue it came on
    (the engine decides the stage by the queue, as Go does): the sender built a wrong hop."""

    reason = "stage-index"


class StageDependencyError(FlowEngineError):
    """A required stage's dependencies have no ``completed`` result (Go nacks such a message)."""

    reason = "stage-dependency"


class StageFailedError(FlowEngineError):
    """A required stage failed (its handler raised, timed out or exhausted its retries); the flow is
    ``failed`` and compensated, and the stage message is kept in ``dlq.{queue}`` with this reason."""

    reason = "stage-failed"

    def __init__(self, message: str, stage_id: str = "", error: str = "") -> None:
        super().__init__(message, None)
        self.stage_id = stage_id
        self.error = error


class FlowTimeoutError(FlowError, TimeoutError):
    """A stage handler ran longer than its ``timeout`` or ``FlowEngine.wait`` gave up waiting for the
    flow to finish: raise the timeout or look at ``await flows.status(instance_id)``."""


# --------------------------------------------------------------------------- RabbitMQ Streams
class StreamError(MmateError):
    """A RabbitMQ Streams operation failed; ``code`` is the stream protocol's response code (0 when
    the failure is ours). See mmate_fast.transports.streams."""

    def __init__(self, message: str, code: int = 0) -> None:
        super().__init__(message)
        self.code = code


class StreamConnectionError(StreamError, ConnectionError):
    """The stream connection (port 5552) could not be opened or was closed: check that the broker runs
    the ``rabbitmq_stream`` plugin (``rabbitmq-plugins enable rabbitmq_stream``) and the URL."""


class StreamNotFoundError(StreamError, LookupError):
    """The stream does not exist (or is not available yet): create it first (``create_stream``)."""


class StreamProtocolError(StreamError, ValueError):
    """Bytes from the stream port that do not parse as the stream protocol (or a compressed
    sub-batch, which this client does not read)."""


class StreamPublishError(StreamError, PublishError):
    """The broker refused a stream publish (``code`` says why, e.g. 0x12 publisher does not exist);
    the messages of that batch are not stored."""


_BY_CODE: dict[int, type[ChannelClosedError]] = {
    403: AccessRefusedError,
    404: NotFoundError,
    405: ResourceLockedError,
    406: PreconditionFailedError,
}


def channel_error_for(reply_code: int, reply_text: str, class_id: int = 0, method_id: int = 0,
                      what: str = "") -> ChannelClosedError:
    """Build the named ChannelClosedError subclass for a broker channel.close."""
    cls = _BY_CODE.get(reply_code, ChannelClosedError)
    prefix = f"{what}: " if what else ""
    return cls(f"{prefix}channel closed by broker: {reply_code} {reply_text}", reply_code, reply_text,
               class_id, method_id)


__all__ = [
    "AMQPConnectionError",
    "AccessRefusedError",
    "AuthenticationError",
    "BadFlowMessageError",
    "BridgeClosedError",
    "BrokerUnreachableError",
    "ChannelClosedError",
    "ChannelError",
    "CircuitOpenError",
    "ClientClosedError",
    "ConfigurationError",
    "ConnectionBlockedError",
    "ConnectionClosedError",
    "ContractError",
    "DecryptionError",
    "DuplicateMessage",
    "EnvelopeError",
    "ExpiredMessageError",
    "FleetCrashLoopError",
    "FleetTargetError",
    "FlowEngineError",
    "FlowError",
    "FlowNotFoundError",
    "FlowStateError",
    "FlowStoreClosedError",
    "FlowStoreError",
    "FlowStoreUnavailableError",
    "FlowTimeoutError",
    "FlowWireError",
    "FrameError",
    "HandlerError",
    "HandlerRegistrationError",
    "HandlerTimeout",
    "HandshakeTimeout",
    "HeartbeatTimeout",
    "InterceptorError",
    "InvalidArgumentError",
    "InvalidPatternError",
    "InvalidURLError",
    "ManagementAPIError",
    "ManagementAPIUnreachableError",
    "MmateError",
    "NoChannelsAvailableError",
    "NotFoundError",
    "ObservationTimeout",
    "OperationTimeout",
    "PayloadEncodeError",
    "PreconditionFailedError",
    "PublishError",
    "PublishNackedError",
    "PublishReturnedError",
    "RemoteError",
    "ReplayedMessageError",
    "RequestTimeout",
    "ResourceLockedError",
    "RetryExhaustedError",
    "SchedulingError",
    "SchemaValidationError",
    "SignatureError",
    "StageDependencyError",
    "StageFailedError",
    "StageIndexError",
    "StreamConnectionError",
    "StreamError",
    "StreamNotFoundError",
    "StreamProtocolError",
    "StreamPublishError",
    "TLSError",
    "UnknownMessageTypeError",
    "UnknownWorkflowError",
    "ValidationError",
    "WorkflowDefinitionError",
    "channel_error_for",
]
