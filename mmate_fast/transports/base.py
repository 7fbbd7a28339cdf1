"""The transport interface, kept importable from here for existing code: it lives in
:mod:`mmate_fast._transport`, below both the AMQP client and the transports, so that neither imports
the other's layer. Import from :mod:`mmate_fast.transports` (``Channel``, ``Connection``,
``QueueDeclareOk``)."""
from __future__ import annotations

from mmate_fast._transport import *  # noqa: F403
from mmate_fast._transport import __all__  # noqa: F401
