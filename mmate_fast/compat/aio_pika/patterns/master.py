"""aio-pika's Master/Worker pattern: ``await master.proxy.queue_name(**kwargs)`` publishes a task
(persistent, mandatory) to the queue of that name through the default exchange;
``await master.create_worker("queue_name", func)`` consumes it and calls ``func(**kwargs)``: acked on
success, rejected (requeued by default) on an exception; raise :class:`RejectMessage` or
:class:`NackMessage` to decide yourself. Same wire form as aio-pika (pickle or JSON bodies)."""
from __future__ import annotations

import asyncio
import gzip
import json
import logging
from collections.abc import Awaitable, Mapping
from functools import partial
from types import MappingProxyType
from typing import Any

from mmate_fast.compat.aio_pika.abc import DeliveryMode
from mmate_fast.compat.aio_pika.message import Message
from mmate_fast.compat.aio_pika.patterns.base import Base, CallbackType, Proxy
from mmate_fast.compat.aio_pika.tools import create_task, ensure_awaitable

log = logging.getLogger("mmate_fast.compat.aio_pika.patterns")


class MessageProcessingError(Exception):
    pass


class NackMessage(MessageProcessingError):
    """Raise in a worker to nack the task (``requeue`` chooses)."""

    def __init__(self, requeue: bool = False) -> None:
        self.requeue = requeue


class RejectMessage(MessageProcessingError):
    """Raise in a worker to reject the task (``requeue`` chooses)."""

    def __init__(self, requeue: bool = False) -> None:
        self.requeue = requeue


class Worker:
    """A running worker: ``await worker.close()`` stops consuming."""

    __slots__ = ("consumer_tag", "loop", "queue")

    def __init__(self, queue: Any, consumer_tag: str, loop: asyncio.AbstractEventLoop) -> None:
        self.queue = queue
        self.consumer_tag = consumer_tag
        self.loop = loop

    def close(self) -> Awaitable[None]:
        async def closer() -> None:
            await self.queue.cancel(self.consumer_tag)

        return create_task(closer)


class Master(Base):
    """Master/Worker on one channel (``requeue`` / ``reject_on_redelivered`` as in ``process()``)."""

    __slots__ = ("_reject_on_redelivered", "_requeue", "channel", "loop", "proxy")

    DELIVERY_MODE = DeliveryMode.PERSISTENT

    def __init__(self, channel: Any, requeue: bool = True, reject_on_redelivered: bool = False) -> None:
        self.channel = channel
        self.loop = asyncio.get_event_loop()
        self.proxy = Proxy(self.create_task)
        self.channel.return_callbacks.add(self.on_message_returned)
        self._requeue = requeue
        self._reject_on_redelivered = reject_on_redelivered

    @property
    def exchange(self) -> Any:
        return self.channel.default_exchange

    @staticmethod
    def on_message_returned(channel: Any, message: Any) -> None:
        log.warning("Message returned. Probably destination queue does not exists: %r", message)

    @classmethod
    async def execute(cls, func: CallbackType[Any], kwargs: Any) -> Any:
        kwargs = kwargs or {}
        if not isinstance(kwargs, dict):
            log.error("Bad kwargs %r received for the %r", kwargs, func)
            raise RejectMessage(requeue=False)
        return await func(**kwargs)

    async def on_message(self, func: CallbackType[Any], message: Any) -> None:
        async with message.process(requeue=self._requeue, reject_on_redelivered=self._reject_on_redelivered,
                                   ignore_processed=True):
            try:
                await self.execute(func, self.deserialize(message.body))
            except RejectMessage as e:
                await message.reject(requeue=e.requeue)
            except NackMessage as e:
                await message.nack(requeue=e.requeue)

    async def create_queue(self, queue_name: str, **kwargs: Any) -> Any:
        return await self.channel.declare_queue(queue_name, **kwargs)

    async def create_worker(self, queue_name: str, func: CallbackType[Any], **kwargs: Any) -> Worker:
        """Declare ``queue_name`` (``kwargs`` go to declare_queue) and consume it with ``func``."""
        queue = await self.create_queue(queue_name, **kwargs)
        consumer_tag = await queue.consume(partial(self.on_message, ensure_awaitable(func)))
        return Worker(queue, consumer_tag, self.loop)

    async def create_task(self, channel_name: str, kwargs: Mapping[str, Any] = MappingProxyType({}),
                          **message_kwargs: Any) -> Any:
        """Publish a task for the workers of ``channel_name``."""
        message = Message(body=self.serialize(kwargs), content_type=self.CONTENT_TYPE,
                          delivery_mode=self.DELIVERY_MODE, **message_kwargs)
        return await self.exchange.publish(message, channel_name, mandatory=True)


class JsonMaster(Master):
    SERIALIZER = json
    CONTENT_TYPE = "application/json"

    def serialize(self, data: Any) -> bytes:
        return json.dumps(data, ensure_ascii=False).encode()


class CompressedJsonMaster(Master):
    SERIALIZER = json
    CONTENT_TYPE = "application/json;compression=gzip"
    COMPRESS_LEVEL = 6

    def serialize(self, data: Any) -> bytes:
        return gzip.compress(json.dumps(data, ensure_ascii=False).encode(), compresslevel=self.COMPRESS_LEVEL)

    def deserialize(self, data: bytes) -> Any:
        return json.loads(gzip.decompress(data))


__all__ = ("CompressedJsonMaster", "JsonMaster", "Master", "NackMessage", "RejectMessage", "Worker")
