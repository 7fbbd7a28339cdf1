"""``aio_pika.logger`` / ``aio_pika.log.get_logger``: the facade logs on ``mmate_fast.compat.aio_pika``."""
from __future__ import annotations

import logging

logger = logging.getLogger("mmate_fast.compat.aio_pika")


def get_logger(name: str) -> logging.Logger:
    return logger.getChild(name.rsplit(".", 1)[-1]) if name else logger


__all__ = ("get_logger", "logger")
