"""AMQP 0-9-1 client for RabbitMQ: asyncio Protocol on uvloop or the default loop, compiled frame
codec, coalesced writes, pipelined publisher confirms."""
from __future__ import annotations

from mmate_fast._ext import load
from mmate_fast.amqp.channel import Channel
from mmate_fast.amqp.channel_pool import ChannelPool
from mmate_fast.amqp.connection import Connection, connect
from mmate_fast.amqp.url import ConnectionParameters, parse_url, parse_urls

_frames = load("frames")

BasicProperties = _frames.BasicProperties
Delivery = _frames.Delivery
Typed = _frames.Typed
encode_properties = _frames.encode_properties

__all__ = [
    "BasicProperties",
    "Channel",
    "ChannelPool",
    "Connection",
    "ConnectionParameters",
    "Delivery",
    "Typed",
    "connect",
    "encode_properties",
    "parse_url",
    "parse_urls",
]
