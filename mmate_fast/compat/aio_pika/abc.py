"""aio-pika's ``aio_pika.abc``: the enums, type aliases and abstract base classes user code names in
type hints and ``isinstance`` checks. The facade's classes derive from these."""
from __future__ import annotations

from abc import ABC
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from enum import Enum, IntEnum, unique
from typing import Any, TypedDict, TypeVar

TimeoutType = int | float | None
NoneType = type(None)
DateType = int | datetime | float | timedelta | None
ConsumerTag = str
MILLISECONDS = 1000
FieldValue = bool | bytes | bytearray | Decimal | dict | float | int | list | str | datetime | None
HeadersType = dict[str, FieldValue]
Arguments = dict[str, FieldValue] | None


@unique
class ExchangeType(str, Enum):  # noqa: UP042  (str, Enum) as aio-pika: same str()
    FANOUT = "fanout"
    DIRECT = "direct"
    TOPIC = "topic"
    HEADERS = "headers"
    X_DELAYED_MESSAGE = "x-delayed-message"
    X_CONSISTENT_HASH = "x-consistent-hash"
    X_MODULUS_HASH = "x-modulus-hash"


@unique
class DeliveryMode(IntEnum):
    NOT_PERSISTENT = 1
    PERSISTENT = 2


class TransactionState(str, Enum):  # noqa: UP042  (str, Enum) as aio-pika
    CREATED = "created"
    COMMITED = "commited"
    ROLLED_BACK = "rolled back"
    STARTED = "started"


@dataclass(frozen=True)
class DeclarationResult:
    message_count: int
    consumer_count: int


class AbstractTransaction(ABC):
    state: TransactionState


class MessageInfo(TypedDict, total=False):
    app_id: str | None
    body_size: int
    cluster_id: str | None
    consumer_tag: str | None
    content_encoding: str | None
    content_type: str | None
    correlation_id: str | None
    delivery_mode: DeliveryMode
    delivery_tag: int | None
    exchange: str | None
    expiration: DateType
    headers: HeadersType
    message_id: str | None
    priority: int | None
    redelivered: bool | None
    routing_key: str | None
    reply_to: str | None
    timestamp: datetime | None
    type: str
    user_id: str | None


class AbstractMessage(ABC):  # noqa: B024  (a marker base, as in aio-pika)
    __slots__ = ()


class AbstractIncomingMessage(AbstractMessage):
    __slots__ = ()


class AbstractProcessContext(ABC):  # noqa: B024
    pass


class AbstractQueue(ABC):  # noqa: B024
    __slots__ = ()


class AbstractQueueIterator(ABC):  # noqa: B024
    pass


class AbstractExchange(ABC):  # noqa: B024
    pass


class AbstractChannel(ABC):  # noqa: B024
    pass


class AbstractConnection(ABC):  # noqa: B024
    pass


class AbstractRobustQueue(AbstractQueue):
    __slots__ = ()


class AbstractRobustExchange(AbstractExchange):
    pass


class AbstractRobustChannel(AbstractChannel):
    pass


class AbstractRobustConnection(AbstractConnection):
    pass


ExchangeParamType = AbstractExchange | str
ChannelCloseCallback = Callable[[AbstractChannel | None, BaseException | None], Any]
ConnectionCloseCallback = Callable[[AbstractConnection | None, BaseException | None], Any]
ConnectionType = TypeVar("ConnectionType", bound=AbstractConnection)
ExceptionType = BaseException | type[BaseException]
#: what a confirmed publish returns: pamqp's ``Basic.Ack``, or the returned message
PublishResultType = Any
ConsumerType = Callable[[AbstractIncomingMessage], Awaitable[Any]]
SSLOptions = dict[str, Any]


def get_exchange_name(value: Any) -> str:
    """The exchange name of an exchange object or a string (ValueError otherwise, as aio-pika)."""
    if isinstance(value, AbstractExchange):
        return str(value.name)  # type: ignore[attr-defined]
    if isinstance(value, str):
        return value
    raise ValueError(f"exchange argument must be an exchange instance or str not {value!r}")


__all__ = (
    "MILLISECONDS",
    "AbstractChannel",
    "AbstractConnection",
    "AbstractExchange",
    "AbstractIncomingMessage",
    "AbstractMessage",
    "AbstractProcessContext",
    "AbstractQueue",
    "AbstractQueueIterator",
    "AbstractRobustChannel",
    "AbstractRobustConnection",
    "AbstractRobustExchange",
    "AbstractRobustQueue",
    "Arguments",
    "ConsumerTag",
    "ConsumerType",
    "DateType",
    "DeliveryMode",
    "ExchangeParamType",
    "ExchangeType",
    "FieldValue",
    "HeadersType",
    "MessageInfo",
    "SSLOptions",
    "TimeoutType",
    "TransactionState",
    "get_exchange_name",
)
