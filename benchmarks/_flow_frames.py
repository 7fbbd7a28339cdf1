"""A counting AMQP 0-9-1 proxy for ``flow_cost.py --frames``: what each row sends the broker per flow.

Listens on a free loopback port, forwards every connection to the node unchanged and counts, per
connection and direction, the methods by name (``basic.publish`` split by exchange and mandatory
flag, ``basic.ack`` by its ``multiple`` bit), content header and body bytes and frames. The proxy
runs in a thread of the flow_cost process (it costs that process CPU, never the broker's), so the
run that counts is not the run to take rates or CPU from. ``report(flows)`` prints per-connection
and total counts divided by the flows completed.
"""
from __future__ import annotations

import collections
import contextlib
import selectors
import socket
import struct
import sys
import threading
from typing import Any

_METHODS = {
    (10, 10): "connection.start", (10, 11): "connection.start-ok", (10, 30): "connection.tune",
    (10, 31): "connection.tune-ok", (10, 40): "connection.open", (10, 41): "connection.open-ok",
    (10, 50): "connection.close", (10, 51): "connection.close-ok",
    (20, 10): "channel.open", (20, 11): "channel.open-ok", (20, 20): "channel.flow",
    (20, 21): "channel.flow-ok", (20, 40): "channel.close", (20, 41): "channel.close-ok",
    (40, 10): "exchange.declare", (40, 11): "exchange.declare-ok",
    (50, 10): "queue.declare", (50, 11): "queue.declare-ok", (50, 20): "queue.bind",
    (50, 21): "queue.bind-ok", (50, 40): "queue.delete", (50, 41): "queue.delete-ok",
    (50, 50): "queue.unbind", (50, 51): "queue.unbind-ok", (50, 30): "queue.purge",
    (60, 10): "basic.qos", (60, 11): "basic.qos-ok", (60, 20): "basic.consume",
    (60, 21): "basic.consume-ok", (60, 30): "basic.cancel", (60, 31): "basic.cancel-ok",
    (60, 40): "basic.publish", (60, 50): "basic.return", (60, 60): "basic.deliver",
    (60, 70): "basic.get", (60, 71): "basic.get-ok", (60, 72): "basic.get-empty",
    (60, 80): "basic.ack", (60, 90): "basic.reject", (60, 120): "basic.nack",
    (85, 10): "confirm.select", (85, 11): "confirm.select-ok",
}


class _Counts:
    def __init__(self) -> None:
        self.c: collections.Counter[str] = collections.Counter()

    def method(self, payload: bytes) -> None:
        cls, meth = struct.unpack_from(">HH", payload)
        name = _METHODS.get((cls, meth), f"{cls}.{meth}")
        c = self.c
        c[name] += 1
        if name == "basic.publish":
            p = 6
            ln = payload[p]
            exchange = payload[p + 1:p + 1 + ln].decode()
            p += 1 + ln
            ln = payload[p]
            rk = payload[p + 1:p + 1 + ln].decode()
            p += 1 + ln
            bits = payload[p]
            c[f"  publish to {exchange or '(default)'}"] += 1
            if exchange:
                c[f"  publish rk {rk.split('.')[0]}.*.{rk.rsplit('.', 1)[-1]}"] += 1
            if bits & 1:
                c["  publish mandatory"] += 1
        elif name in ("basic.ack", "basic.nack"):
            multiple = payload[12] & 1
            c[f"  {name} {'multiple' if multiple else 'single'}"] += 1
        elif name == "basic.deliver":
            p = 4
            p += 1 + payload[p]  # consumer tag
            p += 8 + 1  # delivery tag, redelivered
            ln = payload[p]
            c[f"  deliver from {payload[p + 1:p + 1 + ln].decode() or '(default)'}"] += 1
        elif name == "basic.qos":
            c[f"  qos prefetch {struct.unpack_from('>H', payload, 8)[0]}"] += 1
        elif name == "queue.bind":
            p = 6
            p += 1 + payload[p]
            p += 1 + payload[p]
            ln = payload[p]
            c[f"  bind {payload[p + 1:p + 1 + ln].decode()}"] += 1


class _Side:
    """One direction of one connection: frames parsed as they pass."""

    def __init__(self, counts: _Counts, client: bool) -> None:
        self.buf = bytearray()
        self.counts = counts
        self.header = client  # the client starts with the 8-byte protocol header

    def feed(self, data: bytes) -> None:
        self.buf += data
        if self.header:
            if len(self.buf) < 8:
                return
            del self.buf[:8]
            self.header = False
        buf = self.buf
        c = self.counts.c
        p = 0
        while len(buf) - p >= 7:
            ftype, _ch, size = struct.unpack_from(">BHI", buf, p)
            if len(buf) - p < size + 8:
                break
            payload = bytes(buf[p + 7:p + 7 + size])
            if ftype == 1:
                self.counts.method(payload)
            elif ftype == 2:
                c["content header"] += 1
                c["  header bytes"] += size
            elif ftype == 3:
                c["body frames"] += 1
                c["  body bytes"] += size
            elif ftype == 8:
                c["heartbeat"] += 1
            c["frames"] += 1
            c["bytes"] += size + 8
            p += size + 8
        del buf[:p]


class FrameProxy:
    """``FrameProxy(target_port).start()`` -> its port; ``report(flows)`` after the run."""

    def __init__(self, target_port: int, host: str = "127.0.0.1") -> None:
        self.target = (host, target_port)
        self.lsock = socket.socket()
        self.lsock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.lsock.bind((host, 0))
        self.lsock.listen(64)
        self.lsock.setblocking(False)
        self.port = self.lsock.getsockname()[1]
        self.sel = selectors.DefaultSelector()
        self.conns: list[tuple[_Counts, _Counts]] = []  # (client->broker, broker->client)
        self._stop = False
        self._thread = threading.Thread(target=self._run, daemon=True)

    def start(self) -> int:
        self.sel.register(self.lsock, selectors.EVENT_READ, None)
        self._thread.start()
        return self.port

    def reset(self) -> None:
        """Forget what was counted so far (connections opened later are counted afresh)."""
        self.conns.clear()

    def _run(self) -> None:
        while not self._stop:
            for key, _ in self.sel.select(0.2):
                if key.data is None:
                    self._accept()
                    continue
                src, dst, side = key.data
                try:
                    data = src.recv(1 << 16)
                except OSError:
                    data = b""
                if not data:
                    self._close(src, dst)
                    continue
                side.feed(data)
                try:
                    dst.sendall(data)
                except OSError:
                    self._close(src, dst)

    def _accept(self) -> None:
        try:
            cs, _ = self.lsock.accept()
        except OSError:
            return
        bs = socket.create_connection(self.target)
        for s in (cs, bs):
            s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        up, down = _Counts(), _Counts()
        self.conns.append((up, down))
        self.sel.register(cs, selectors.EVENT_READ, (cs, bs, _Side(up, True)))
        self.sel.register(bs, selectors.EVENT_READ, (bs, cs, _Side(down, False)))

    def _close(self, a: socket.socket, b: socket.socket) -> None:
        for s in (a, b):
            with contextlib.suppress(KeyError, ValueError):
                self.sel.unregister(s)
            s.close()

    def stop(self) -> None:
        self._stop = True
        self._thread.join(2)

    def report(self, flows: int, label: str = "", out: Any = None) -> None:
        out = out or sys.stderr
        total_up: collections.Counter[str] = collections.Counter()
        total_down: collections.Counter[str] = collections.Counter()
        print(f"--- AMQP per flow ({flows} flows) {label}", file=out)
        for i, (up, down) in enumerate(self.conns):
            total_up.update(up.c)
            total_down.update(down.c)
            if up.c["frames"] < flows / 10:  # admin / setup connections: leave them to the totals
                continue
            print(f"  connection {i}: client -> broker", file=out)
            _table(up.c, flows, out)
            print(f"  connection {i}: broker -> client", file=out)
            _table(down.c, flows, out)
        print("  TOTAL client -> broker", file=out)
        _table(total_up, flows, out)
        print("  TOTAL broker -> client", file=out)
        _table(total_down, flows, out)
        out.flush()


def _table(c: collections.Counter[str], flows: int, out: Any) -> None:
    for name in sorted(c, key=lambda k: (k.strip(), k)):
        print(f"    {name:<44} {c[name] / flows:10.3f}  ({c[name]})", file=out)
