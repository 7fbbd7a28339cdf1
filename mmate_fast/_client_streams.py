"""The Client's RabbitMQ Streams side: one stream connection (opened on first use, to the same
broker, user and vhost as the client's ``amqp://`` URL, port 5552, or ``client.stream_url``), a
publisher per stream, the consumers it started, and dead-lettering of failed records to
``dlq.{stream}.{group}`` over the client's AMQP connection. Closed with the client.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterable, Mapping
from typing import Any

from mmate_fast import errors


class ClientStreams:
    """What ``Client.publish_to_stream`` / ``subscribe_stream`` / ... use (see those)."""

    def __init__(self, client: Any) -> None:
        self._client = client
        self._conn: Any = None
        self._lock = asyncio.Lock()
        self._publishers: dict[str, Any] = {}
        self._consumers: list[Any] = []
        self._dead_letter: Any = None

    async def connection(self) -> Any:
        from mmate_fast.transports.streams import connect_stream

        client = self._client
        async with self._lock:
            if self._conn is None or self._conn.is_closed:
                url = client.stream_url or client.url
                if url.split(":", 1)[0].lower() not in ("amqp", "rabbitmq-stream"):
                    raise errors.StreamError(
                        f"streams need RabbitMQ (amqp:// or rabbitmq-stream://), not {url.split(':', 1)[0]}://"
                    )
                self._conn = await connect_stream(url, timeout=client.connect_timeout)
                self._publishers.clear()
        return self._conn

    async def create(
        self,
        stream: str,
        *,
        max_length_bytes: int | None = None,
        max_age: str | None = None,
        max_segment_size_bytes: int | None = None,
        arguments: Mapping[str, Any] | None = None,
    ) -> bool:
        args: dict[str, Any] = dict(arguments or {})
        if max_length_bytes is not None:
            args["max-length-bytes"] = int(max_length_bytes)
        if max_age is not None:
            args["max-age"] = max_age
        if max_segment_size_bytes is not None:
            args["stream-max-segment-size-bytes"] = int(max_segment_size_bytes)
        return bool(await (await self.connection()).create_stream(stream, args))

    async def delete(self, stream: str) -> bool:
        pub = self._publishers.pop(stream, None)
        if pub is not None:
            pub.producer._closed = True
        return bool(await (await self.connection()).delete_stream(stream))

    async def publisher(self, stream: str, **options: Any) -> Any:
        from mmate_fast.messaging.streams import open_publisher

        pub = self._publishers.get(stream)
        if pub is None or pub.producer._error is not None or pub.producer._closed:
            conn = await self.connection()
            cl = self._client
            pub = await open_publisher(conn, stream, source=cl.source, pipeline=cl.pipeline, **options)
            self._publishers[stream] = pub
        return pub

    async def publish(self, stream: str, message: Any, **options: Any) -> str:
        return str(await (await self.publisher(stream)).publish(message, **options))

    async def publish_many(self, stream: str, messages: Iterable[Any], **options: Any) -> list[str]:
        return list(await (await self.publisher(stream)).publish_many(messages, **options))

    async def subscribe(self, stream: str, **options: Any) -> Any:
        from mmate_fast.messaging.streams import consume_stream

        client = self._client
        conn = await self.connection()
        if "dead_letter" not in options and client.dead_letter and client.connection is not None:
            if self._dead_letter is None:
                from mmate_fast.reliability.stream_dead_lettering import StreamDeadLettering

                self._dead_letter = StreamDeadLettering(client.connection)
            options["dead_letter"] = self._dead_letter
        options.setdefault("reconnect", self.connection)  # a lost connection: open another, resubscribe
        dispatcher = options.pop("dispatcher", None) or client.dispatcher  # own handlers for this group
        consumer = await consume_stream(
            conn, stream, dispatcher, pipeline=client.pipeline, services=client, **options
        )
        self._consumers.append(consumer)
        return consumer

    async def close(self, timeout: float) -> None:
        for consumer in self._consumers:
            await consumer.stop(timeout)
        for pub in self._publishers.values():
            with contextlib.suppress(errors.MmateError):
                await pub.close()
        if self._dead_letter is not None:
            await self._dead_letter.close()
        if self._conn is not None:
            await self._conn.close()
