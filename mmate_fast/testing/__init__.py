"""Testing support for services built on mmate_fast, as FastStream's TestBroker gives its users.

The pytest plugin (:mod:`mmate_fast.testing.plugin`, registered as the pytest entry point ``mmate``)
provides the fixtures ``mmate_memory_client``, ``mmate_rabbit_client`` and ``mmate_names``; the
helpers here work with any connected ``Client``:

- ``capture = record_published(client)``: what the client publishes from now on
  (``capture.of(OrderPlaced)``, ``await capture.wait_for(OrderPlaced, count=1, timeout=5)``);
- ``await feed(client, message)``: deliver a message to the client's handlers and wait until they
  ran (their result back, their error raised).
"""
from __future__ import annotations

from mmate_fast.testing._capture import Published, PublishedCapture, record_published
from mmate_fast.testing._feed import feed
from mmate_fast.testing._names import UniqueNames

__all__ = ["Published", "PublishedCapture", "UniqueNames", "feed", "record_published"]
