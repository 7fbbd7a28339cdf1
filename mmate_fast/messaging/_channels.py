"""Channel housekeeping shared by the subscriber and the Client."""
from __future__ import annotations

import contextlib
import logging
from typing import Any

from mmate_fast import errors

log = logging.getLogger("mmate_fast.messaging")


async def close_quietly(channel: Any, timeout: float | None = None) -> None:
    """Close ``channel`` and forget it, whatever its state: a channel a refused call closed is closed
    too, so that a recovering connection stops tracking (and reviving) it. Never raises."""
    if channel is None:
        return
    with contextlib.suppress(errors.MmateError, OSError):
        await channel.close(timeout)
        return
    log.debug("closing channel %r failed; dropped", channel)
