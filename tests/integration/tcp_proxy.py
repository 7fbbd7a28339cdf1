"""A loopback TCP proxy for failure tests: forwards to the broker and can cut every link at once or
refuse new connections for a while."""
from __future__ import annotations

import asyncio
import contextlib


class TcpProxy:
    """``async with TcpProxy(5672) as proxy: url = proxy.url``; ``proxy.cut()`` drops every link."""

    def __init__(self, upstream_port: int = 5672, upstream_host: str = "127.0.0.1") -> None:
        self.upstream = (upstream_host, upstream_port)
        self.server: asyncio.Server | None = None
        self.refusing = False
        self.links: set[tuple[asyncio.StreamWriter, asyncio.StreamWriter]] = set()
        self.accepted = 0

    @property
    def port(self) -> int:
        assert self.server is not None
        return int(self.server.sockets[0].getsockname()[1])

    def url(self, **query: object) -> str:
        q = "&".join(f"{k}={v}" for k, v in query.items())
        return f"amqp://guest:guest@127.0.0.1:{self.port}/" + (f"?{q}" if q else "")

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                data = await reader.read(65536)
                if not data:
                    break
                writer.write(data)
                await writer.drain()
        except (ConnectionError, RuntimeError, asyncio.CancelledError):
            # RuntimeError: uvloop's "handler is closed" when the other side went away mid-write
            pass
        finally:
            with contextlib.suppress(Exception):
                writer.close()

    async def _handle(self, client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter) -> None:
        if self.refusing:
            client_w.close()
            return
        self.accepted += 1
        try:
            up_r, up_w = await asyncio.open_connection(*self.upstream)
        except OSError:
            client_w.close()
            return
        link = (client_w, up_w)
        self.links.add(link)
        try:
            await asyncio.gather(self._pipe(client_r, up_w), self._pipe(up_r, client_w))
        finally:
            self.links.discard(link)

    def cut(self) -> int:
        """Drop every open link abruptly (like a network failure); returns how many."""
        n = 0
        for a, b in list(self.links):
            for w in (a, b):
                transport = w.transport
                with contextlib.suppress(Exception):
                    transport.abort()
            n += 1
        self.links.clear()
        return n

    async def __aenter__(self) -> TcpProxy:
        self.server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.cut()
        assert self.server is not None
        self.server.close()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self.server.wait_closed(), 2)
