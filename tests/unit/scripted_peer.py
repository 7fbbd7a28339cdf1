"""A scripted AMQP server on loopback for protocol-robustness tests (bad frames, silence, blocked).

It is not a broker: it speaks exactly the frames a test tells it to, using pamqp, so the client can
be fed input RabbitMQ would never send (corrupt frames, oversized frames, silence).
"""
from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable

from pamqp import commands as spec
from pamqp import frame as pframe

Script = Callable[["PeerSession"], Awaitable[None]]


class PeerSession:
    """One accepted client connection with helpers to read/write AMQP frames."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer
        self.buf = b""
        self.received: list[object] = []

    async def read_protocol_header(self) -> bytes:
        return await self.reader.readexactly(8)

    def send(self, method: object, channel: int = 0) -> None:
        self.writer.write(pframe.marshal(method, channel))  # type: ignore[arg-type]

    def send_raw(self, data: bytes) -> None:
        self.writer.write(data)

    async def read_frame(self, timeout: float = 5.0) -> tuple[int, object]:
        async with asyncio.timeout(timeout):
            while True:
                if len(self.buf) >= 7:
                    size = int.from_bytes(self.buf[3:7], "big")
                    if len(self.buf) >= size + 8:
                        consumed, channel, obj = pframe.unmarshal(self.buf)
                        self.buf = self.buf[consumed:]
                        self.received.append(obj)
                        return channel, obj
                chunk = await self.reader.read(65536)
                if not chunk:
                    raise EOFError("client closed the socket")
                self.buf += chunk

    async def expect(self, cls: type, timeout: float = 5.0) -> object:
        while True:
            _, obj = await self.read_frame(timeout)
            if isinstance(obj, cls):
                return obj

    async def handshake(self, frame_max: int = 131072, heartbeat: int = 0, channel_max: int = 2047) -> None:
        await self.read_protocol_header()
        self.send(spec.Connection.Start(server_properties={"product": "scripted-peer"},
                                        mechanisms="PLAIN", locales="en_US"))
        await self.expect(spec.Connection.StartOk)
        self.send(spec.Connection.Tune(channel_max=channel_max, frame_max=frame_max, heartbeat=heartbeat))
        await self.expect(spec.Connection.TuneOk)
        await self.expect(spec.Connection.Open)
        self.send(spec.Connection.OpenOk())

    async def open_channel(self) -> int:
        channel, _ = await self.read_frame()
        self.send(spec.Channel.OpenOk(), channel)
        return channel


class ScriptedPeer:
    """``async with ScriptedPeer(script) as peer: conn = await connect(peer.url)``."""

    def __init__(self, script: Script) -> None:
        self.script = script
        self.server: asyncio.Server | None = None
        self.sessions: list[PeerSession] = []
        self.errors: list[BaseException] = []
        self.done = asyncio.Event()

    @property
    def url(self) -> str:
        assert self.server is not None
        port = self.server.sockets[0].getsockname()[1]
        return f"amqp://guest:guest@127.0.0.1:{port}/"

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        session = PeerSession(reader, writer)
        self.sessions.append(session)
        try:
            await self.script(session)
        except (EOFError, ConnectionError, asyncio.IncompleteReadError):
            pass
        except BaseException as exc:  # surfaced by the test
            self.errors.append(exc)
        finally:
            self.done.set()
            with contextlib.suppress(Exception):
                writer.close()

    async def __aenter__(self) -> ScriptedPeer:
        self.server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self.server is not None
        self.server.close()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self.server.wait_closed(), 2)
