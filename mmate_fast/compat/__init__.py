"""Adapters that let code written for other RabbitMQ client libraries run on mmate_fast's AMQP client.

``mmate_fast.compat.aio_pika``: aio-pika's public API (``import mmate_fast.compat.aio_pika as
aio_pika`` is the only change) on :mod:`mmate_fast.amqp`.
"""
