"""Built-in interceptors for the Client pipeline (see mmate_fast.messaging.pipeline).

``Client(url, interceptors=[...])`` or ``client.use(...)``; ``before_*`` hooks run in registration
order, so put cheap refusals (signature, filter) first and logging/metrics/tracing outermost::

    Client(url, interceptors=[
        TracingInterceptor(), MetricsInterceptor(), LoggingInterceptor(),
        SigningInterceptor(secret, key_id="k1"), ValidationInterceptor(),
        FilterInterceptor(lambda ctx: ...), DeduplicationInterceptor(), TimeoutInterceptor(10),
    ])

TracingInterceptor needs the optional ``otel`` extra (imported only when one is created).
"""
from __future__ import annotations

from mmate_fast.interceptors.dedup import DeduplicationInterceptor, DedupStore, MemoryDedupStore
from mmate_fast.interceptors.filter import FilterInterceptor
from mmate_fast.interceptors.log import LoggingInterceptor
from mmate_fast.interceptors.metrics import DEFAULT_BUCKETS, Histogram, MetricsInterceptor
from mmate_fast.interceptors.signing import KEY_ID_HEADER, SIGNATURE_HEADER, SigningInterceptor, sign_body
from mmate_fast.interceptors.timeout import TimeoutInterceptor
from mmate_fast.interceptors.tracing import TracingInterceptor
from mmate_fast.interceptors.validation import ValidationInterceptor, Validator

__all__ = [
    "DEFAULT_BUCKETS",
    "KEY_ID_HEADER",
    "SIGNATURE_HEADER",
    "DedupStore",
    "DeduplicationInterceptor",
    "FilterInterceptor",
    "Histogram",
    "LoggingInterceptor",
    "MemoryDedupStore",
    "MetricsInterceptor",
    "SigningInterceptor",
    "TimeoutInterceptor",
    "TracingInterceptor",
    "ValidationInterceptor",
    "Validator",
    "sign_body",
]
