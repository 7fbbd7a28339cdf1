"""One worker of the raw fleet: ``python benchmarks/_fleet_raw.py QUEUE`` (the zero-cost client).

A blocking socket, the same prefetch, frame headers walked with struct (no decoding), the handler
body run once per complete delivery, one ``basic.ack(multiple)`` per received batch (as _raw.py's
consume loop) and also every prefetch/4 messages within a batch (with a 1 ms handler a batch of 100
takes 100 ms: acking only at its end would empty the prefetch window and stall a round trip).
SIGTERM ends it between batches (everything handled is acked by then).
The frame walk repeats _raw.py's ``consume_loop`` on purpose: a shared walker with a per-frame callback
would add a call per frame to the zero-cost client every ratio is measured against.
"""
from __future__ import annotations

import os
import signal
import sys

from _common import DELIVER_ID, HDR, U32, U64, RawAMQP, ack_frame
from _fleet_common import DEFAULT_PREFETCH, tally_from_env, workload
from pamqp import commands as C

_stop = [False]


def _on_term(signum: int, frame: object) -> None:
    _stop[0] = True


def main(queue: str) -> None:
    tally = tally_from_env()
    body = workload(os.environ.get("BENCH_FLEET_HANDLER", "light"))
    hit = tally.hit
    signal.signal(signal.SIGTERM, _on_term)
    conn = RawAMQP()
    prefetch = int(os.environ.get("BENCH_FLEET_PREFETCH", DEFAULT_PREFETCH))
    ack_every = max(1, prefetch // 4)
    conn.rpc(C.Basic.Qos(prefetch_count=prefetch), C.Basic.QosOk)
    conn.rpc(C.Basic.Consume(queue=queue, consumer_tag="raw", no_ack=False), C.Basic.ConsumeOk)
    sock = conn.sock
    sock.settimeout(0.2)  # look at the stop flag between reads
    buf = bytearray(8 << 20)
    mv = memoryview(buf)
    filled = len(conn.rbuf)
    buf[:filled] = conn.rbuf
    hdr, u32, u64 = HDR.unpack_from, U32.unpack_from, U64.unpack_from
    cur_tag = done_tag = acked_tag = 0
    end = filled
    while not _stop[0]:
        if end == filled:
            try:
                got = sock.recv_into(mv[filled:])
            except TimeoutError:
                continue
            if not got:
                break
            end = filled + got
        pos = 0
        while pos + 7 <= end:
            typ, _ch, size = hdr(buf, pos)
            fe = pos + 8 + size
            if fe > end:
                break
            if typ == 3:
                body()
                hit()
                done_tag = cur_tag
                if done_tag - acked_tag >= ack_every:  # a slow handler: keep the prefetch window open
                    sock.sendall(ack_frame(done_tag, True))
                    acked_tag = done_tag
            elif typ == 1 and u32(buf, pos + 7)[0] == DELIVER_ID:
                ctl = buf[pos + 11]
                cur_tag = u64(buf, pos + 12 + ctl)[0]
            pos = fe
        rem = end - pos
        if rem:
            buf[:rem] = buf[pos:end]
        filled = end = rem
        if done_tag != acked_tag:
            sock.sendall(ack_frame(done_tag, True))
            acked_tag = done_tag
    tally.write()
    conn.close()


if __name__ == "__main__":
    main(sys.argv[1])
