"""aio-pika's patterns: ``Master``/``Worker`` (task queue) and ``RPC`` (request/reply), with their
JSON variants."""
from __future__ import annotations

from mmate_fast.compat.aio_pika.patterns.master import JsonMaster, Master, NackMessage, RejectMessage, Worker
from mmate_fast.compat.aio_pika.patterns.rpc import RPC, JsonRPC

__all__ = ("RPC", "JsonMaster", "JsonRPC", "Master", "NackMessage", "RejectMessage", "Worker")
