"""Built-in interceptors for the Client pipeline (see mmate_fast.messaging.pipeline).

``Client(url, interceptors=[...])`` or ``client.use(...)``; ``before_*`` hooks run in registration
order, so put cheap refusals (filter) first and logging/metrics/tracing outermost::

    Client(url, interceptors=[
        SigningInterceptor(secret, key_id="k1"), EncryptionInterceptor(key, key_id="e1"),
        TracingInterceptor(), MetricsInterceptor(), LoggingInterceptor(), ValidationInterceptor(),
        FilterInterceptor(lambda ctx: ...), DeduplicationInterceptor(), TimeoutInterceptor(10),
    ])

Signing and encryption work on the wire stage (``seal`` / ``verify_delivery``): they run before
every other hook on consume — before anything decodes the body — and last on publish, in their own
fixed order (encrypt then sign; verify then decrypt), wherever they are in the list.

TracingInterceptor needs the optional ``otel`` extra, MetricsInterceptor the ``observability`` extra
(prometheus_client), EncryptionInterceptor the ``crypto`` extra
(each imported only when one is created).
"""
from __future__ import annotations

from mmate_fast.interceptors.dedup import DeduplicationInterceptor, DedupStore, MemoryDedupStore
from mmate_fast.interceptors.encryption import (
    ENCRYPTION_HEADER,
    ENCRYPTION_KEY_HEADER,
    EncryptionInterceptor,
)
from mmate_fast.interceptors.filter import FilterInterceptor
from mmate_fast.interceptors.log import LoggingInterceptor
from mmate_fast.interceptors.metrics import DEFAULT_BUCKETS, MetricsInterceptor
from mmate_fast.interceptors.schema import SchemaValidationInterceptor
from mmate_fast.interceptors.signing import (
    KEY_ID_HEADER,
    SIGNATURE_HEADER,
    SigningInterceptor,
    sign_message,
    signing_input,
)
from mmate_fast.interceptors.timeout import TimeoutInterceptor
from mmate_fast.interceptors.tracing import TracingInterceptor
from mmate_fast.interceptors.validation import ValidationInterceptor, Validator

__all__ = [
    "DEFAULT_BUCKETS",
    "ENCRYPTION_HEADER",
    "ENCRYPTION_KEY_HEADER",
    "KEY_ID_HEADER",
    "SIGNATURE_HEADER",
    "DedupStore",
    "DeduplicationInterceptor",
    "EncryptionInterceptor",
    "FilterInterceptor",
    "LoggingInterceptor",
    "MemoryDedupStore",
    "MetricsInterceptor",
    "SchemaValidationInterceptor",
    "SigningInterceptor",
    "TimeoutInterceptor",
    "TracingInterceptor",
    "ValidationInterceptor",
    "Validator",
    "sign_message",
    "signing_input",
]
