"""Parse ``amqp://user:pass@host:port/vhost?heartbeat=..&frame_max=..`` into connection parameters.

The password is kept out of ``repr`` and every error message.
"""
from __future__ import annotations

import ssl
from dataclasses import dataclass, field
from urllib.parse import parse_qsl, unquote, urlsplit

from mmate_fast.errors import InvalidURLError

DEFAULT_PORT = 5672
DEFAULT_TLS_PORT = 5671

_INT_OPTIONS = ("heartbeat", "frame_max", "channel_max")
_FLOAT_OPTIONS = ("connection_timeout", "timeout")


@dataclass(slots=True)
class ConnectionParameters:
    """Everything needed to open one AMQP connection."""

    host: str = "127.0.0.1"
    port: int = DEFAULT_PORT
    virtual_host: str = "/"
    username: str = "guest"
    password: str = field(default="guest", repr=False)
    #: seconds; None = accept the broker's proposal, 0 = off
    heartbeat: int | None = None
    frame_max: int = 131072
    channel_max: int = 2047
    #: seconds for TCP connect + handshake
    connection_timeout: float = 10.0
    #: default seconds for every broker round trip that gets no explicit timeout
    timeout: float = 30.0
    tls: bool = False
    ssl_context: ssl.SSLContext | None = field(default=None, repr=False)
    server_hostname: str | None = None
    #: SASL mechanism: PLAIN (user/password) or EXTERNAL (TLS client certificate)
    auth_mechanism: str = "PLAIN"
    connection_name: str | None = None

    def safe_url(self) -> str:
        """The URL without the password, for logs and error messages."""
        scheme = "amqps" if self.tls else "amqp"
        vhost = "" if self.virtual_host == "/" else "/" + self.virtual_host
        return f"{scheme}://{self.username}@{self.host}:{self.port}/{vhost.lstrip('/')}"


def parse_url(url: str) -> ConnectionParameters:
    """Parse an AMQP URL (RabbitMQ URI spec). Raises InvalidURLError with a hint, never echoing the
    password."""
    try:
        parts = urlsplit(url)
    except ValueError as exc:
        raise InvalidURLError(f"cannot parse AMQP URL: {exc}") from None
    scheme = parts.scheme.lower()
    if scheme not in ("amqp", "amqps"):
        raise InvalidURLError(f"AMQP URL must start with amqp:// or amqps://, got {scheme!r}")
    tls = scheme == "amqps"
    try:
        port = parts.port or (DEFAULT_TLS_PORT if tls else DEFAULT_PORT)
    except ValueError:
        raise InvalidURLError("AMQP URL has an invalid port number") from None
    path = parts.path
    if path in ("", "/"):
        vhost = "/"
    else:
        vhost = unquote(path[1:])
        if "/" in path[1:]:
            raise InvalidURLError("AMQP URL path must be a single vhost segment; write '/' as %2F")
    params = ConnectionParameters(
        host=parts.hostname or "127.0.0.1",
        port=port,
        virtual_host=vhost,
        username=unquote(parts.username) if parts.username is not None else "guest",
        password=unquote(parts.password) if parts.password is not None else "guest",
        tls=tls,
    )
    for key, value in parse_qsl(parts.query, keep_blank_values=True):
        _apply_option(params, key, value)
    if tls and params.ssl_context is None:
        params.ssl_context = ssl.create_default_context()
    return params


def _apply_option(params: ConnectionParameters, key: str, value: str) -> None:
    try:
        if key in _INT_OPTIONS:
            number = int(value)
            if number < 0:
                raise ValueError
            setattr(params, key, number)
        elif key in _FLOAT_OPTIONS:
            seconds = float(value)
            if seconds <= 0:
                raise ValueError
            setattr(params, key, seconds)
        elif key == "auth_mechanism":
            if value.upper() not in ("PLAIN", "EXTERNAL"):
                raise ValueError
            params.auth_mechanism = value.upper()
        elif key in ("name", "connection_name"):
            params.connection_name = value
        elif key == "server_name_indication":
            params.server_hostname = value
        else:
            raise InvalidURLError(
                f"unknown AMQP URL option {key!r}; known: heartbeat, frame_max, channel_max, "
                "connection_timeout, timeout, auth_mechanism, name, server_name_indication")
    except ValueError:
        raise InvalidURLError(f"AMQP URL option {key}={value!r} is not a valid value") from None
    if key == "frame_max" and params.frame_max and params.frame_max < 4096:
        raise InvalidURLError("frame_max must be at least 4096 (or 0 for the broker's maximum)")
