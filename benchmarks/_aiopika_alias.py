"""``BENCH_AIO_PIKA=compat``: make ``import aio_pika`` (and its submodules) resolve to
``mmate_fast.compat.aio_pika`` in this process, so the aio-pika benchmark clients run unchanged
through the facade (``--level aiopika-compat``; imported first by _aiopika.py and _rpc_aiopika.py)."""
from __future__ import annotations

import importlib
import os
import sys

if os.environ.get("BENCH_AIO_PIKA") == "compat":
    _facade = importlib.import_module("mmate_fast.compat.aio_pika")
    sys.modules["aio_pika"] = _facade
    for _sub in ("abc", "exceptions", "patterns", "pool", "message", "channel", "connection", "exchange",
                 "queue", "robust_connection", "robust_channel", "robust_queue", "robust_exchange"):
        sys.modules[f"aio_pika.{_sub}"] = importlib.import_module(f"mmate_fast.compat.aio_pika.{_sub}")
