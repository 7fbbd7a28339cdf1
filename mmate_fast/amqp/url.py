"""Parse ``amqp://user:pass@host:port/vhost?heartbeat=..&frame_max=..`` into connection parameters.

The two input limits have no "unlimited": ``frame_max`` is 4096..2**32-1 bytes, or 0 for "the
broker's value" (negotiation then takes what the broker proposes, and the reader enforces it);
``max_message_size`` is 1..2**64-1 bytes (default 128 MiB, RabbitMQ's own default): a delivery
declaring a larger body is dropped as it arrives and handed on marked ``oversized``.

``amqps://`` takes the RabbitMQ URI spec's TLS options: ``cacertfile``, ``certfile``, ``keyfile``,
``verify=verify_peer|verify_none``, ``server_name_indication`` and ``auth_mechanism=external`` (log
in with the client certificate). The password is kept out of ``repr``, ``str`` and every error message.

A cluster is several addresses: ``amqp://u:p@h1:5672,h2:5673,h3/vhost?...`` (one user, vhost and
options for every node) or a list of URLs; :func:`parse_urls` gives one ConnectionParameters per node,
``shuffle=true`` (URL option, or ``connect(..., shuffle=True)``) tries them in a random order to
spread clients over the nodes. :func:`parse_url` takes one node only.
"""
from __future__ import annotations

import random
import ssl
from collections.abc import Sequence
from dataclasses import dataclass, field
from urllib.parse import parse_qsl, quote, unquote, urlsplit

from mmate_fast._ext import load
from mmate_fast.errors import InvalidURLError

_frames = load("frames")

DEFAULT_PORT = 5672
DEFAULT_TLS_PORT = 5671
#: RabbitMQ's own default max_message_size (128 MiB)
DEFAULT_MAX_MESSAGE_SIZE: int = _frames.DEFAULT_MAX_MESSAGE_SIZE

_INT_OPTIONS = ("heartbeat", "frame_max", "channel_max", "max_message_size")
#: options checked by :func:`limit_problem` (also when given to ``connect()``)
LIMIT_OPTIONS = ("frame_max", "max_message_size")
_FLOAT_OPTIONS = ("connection_timeout", "timeout")
_FILE_OPTIONS = ("cacertfile", "certfile", "keyfile")
_VERIFY = {"verify_peer": True, "verify_none": False}
_BOOL = {"true": True, "1": True, "yes": True, "false": False, "0": False, "no": False}


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
    #: bytes; 0 = take the broker's value (never "no limit"), else 4096..2**32-1
    frame_max: int = 131072
    channel_max: int = 2047
    #: bytes (1..2**64-1): a delivery declaring a larger body is dropped, handed on marked ``oversized``
    max_message_size: int = DEFAULT_MAX_MESSAGE_SIZE
    #: seconds for TCP connect + handshake
    connection_timeout: float = 10.0
    #: default seconds for every broker round trip that gets no explicit timeout
    timeout: float = 30.0
    tls: bool = False
    #: a ready context (``connect(..., ssl_context=ctx)``); built from the options below when None
    ssl_context: ssl.SSLContext | None = field(default=None, repr=False)
    #: TLS: CA bundle to verify the broker (None = the system store)
    cacertfile: str | None = None
    #: TLS: client certificate (PEM, may hold the key too) and its key
    certfile: str | None = None
    keyfile: str | None = None
    #: TLS: verify the broker's certificate and host name (``verify=verify_none`` turns it off)
    verify: bool = True
    #: TLS: name sent as SNI and checked against the certificate (default: host)
    server_hostname: str | None = None
    #: SASL mechanism: PLAIN (user/password) or EXTERNAL (TLS client certificate)
    auth_mechanism: str = "PLAIN"
    connection_name: str | None = None
    #: several nodes: try them in a random order (spreads clients over a cluster); URL ``shuffle=true``
    shuffle: bool = False

    def __post_init__(self) -> None:
        if self.tls and self.ssl_context is None:
            self.ssl_context = self.build_ssl_context()

    def __str__(self) -> str:
        return self.safe_url()

    def limits_problem(self) -> tuple[str, str] | None:
        """(option, why) for a limit (frame_max, max_message_size) set to a value that is not
        allowed, else None: ``connect()`` checks it before it opens a socket."""
        for name in LIMIT_OPTIONS:
            problem = limit_problem(name, getattr(self, name))
            if problem is not None:
                return name, problem
        return None

    def build_ssl_context(self) -> ssl.SSLContext:
        """The SSLContext for this connection: ``ssl_context`` if given, else one built from
        cacertfile/certfile/keyfile/verify (see mmate_fast.amqp.tls)."""
        from mmate_fast.amqp.tls import context_for

        return context_for(self)

    def safe_url(self) -> str:
        """The URL without the password, for logs and error messages."""
        scheme = "amqps" if self.tls else "amqp"
        vhost = "" if self.virtual_host == "/" else quote(self.virtual_host, safe="")
        user = quote(self.username, safe="")
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{scheme}://{user}@{host}:{self.port}/{vhost}"


#: what :func:`parse_urls`, ``connect()`` and ``connect_robust()`` take: one URL (maybe naming several
#: nodes), a list of URLs, or ready parameters (one or a list)
Addresses = str | ConnectionParameters | Sequence[str | ConnectionParameters]


def parse_urls(urls: Addresses) -> list[ConnectionParameters]:
    """One ConnectionParameters per node, in the order given: ``amqp://u:p@h1:5672,h2:5673/vhost?..``
    (every node with the same user, vhost and options), a list of such URLs, or parameters (kept as
    they are). InvalidURLError for an empty list or an empty address in the host list."""
    if isinstance(urls, (str, ConnectionParameters)):
        urls = [urls]
    nodes: list[ConnectionParameters] = []
    for url in urls:
        if isinstance(url, ConnectionParameters):
            nodes.append(url)
        elif isinstance(url, str):
            nodes.extend(parse_url(one) for one in _split_hosts(url))
        else:
            raise InvalidURLError(f"an AMQP address must be a URL string, got {type(url).__name__}")
    if not nodes:
        raise InvalidURLError("no AMQP URL given: give at least one broker address")
    return nodes


def _split_hosts(url: str) -> list[str]:
    """``scheme://userinfo@h1,h2:p/rest`` -> one single-host URL per host (``[v6]`` hosts have no comma)."""
    scheme, sep, rest = url.partition("://")
    if not sep:
        return [url]
    end = min((i for i in (rest.find("/"), rest.find("?"), rest.find("#")) if i >= 0), default=len(rest))
    netloc, tail = rest[:end], rest[end:]
    userinfo, at, hostlist = netloc.rpartition("@")
    if "," not in hostlist:
        return [url]
    hosts = hostlist.split(",")
    if any(not h.strip() for h in hosts):
        raise InvalidURLError("AMQP URL host list has an empty address (write h1:5672,h2:5673)")
    return [f"{scheme}://{userinfo}{at}{h.strip()}{tail}" for h in hosts]


def safe_urls(nodes: Sequence[ConnectionParameters]) -> str:
    """The nodes as one URL without the password (``amqp://guest@h1:5672,h2:5673/``), for messages."""
    if len(nodes) == 1:
        return nodes[0].safe_url()
    first = nodes[0].safe_url()
    scheme_user, _, rest = first.partition("@")
    vhost = rest.partition("/")[2]
    hosts = ",".join(f"[{n.host}]:{n.port}" if ":" in n.host else f"{n.host}:{n.port}" for n in nodes)
    return f"{scheme_user}@{hosts}/{vhost}"


def connect_order(nodes: Sequence[ConnectionParameters], start: int = 0,
                  shuffle: bool | None = None) -> list[int]:
    """Indexes of ``nodes`` in the order to try them: from ``start`` round the list, or (``shuffle``;
    None = any node's ``shuffle`` option) a random order."""
    order = [(start + i) % len(nodes) for i in range(len(nodes))]
    if (any(n.shuffle for n in nodes) if shuffle is None else shuffle):
        random.shuffle(order)
    return order


def parse_url(url: str) -> ConnectionParameters:
    """Parse an AMQP URL of one node (RabbitMQ URI spec; several nodes: :func:`parse_urls`). Raises
    InvalidURLError with a hint, never echoing the password."""
    if len(_split_hosts(url)) > 1:
        raise InvalidURLError("this AMQP URL names several nodes (h1,h2,...): parse it with parse_urls(), "
                              "or pass it to connect() / connect_robust() / Client")
    try:
        parts = urlsplit(url)
    except ValueError:
        # the ValueError's text may quote the netloc, and so the password: never pass it on
        raise InvalidURLError("cannot parse AMQP URL (malformed host, brackets or characters)") from None
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
    try:
        hostname = parts.hostname
    except ValueError:
        raise InvalidURLError("AMQP URL has an invalid host") from None
    params = ConnectionParameters(
        host=hostname or "127.0.0.1",
        port=port,
        virtual_host=vhost,
        username=unquote(parts.username) if parts.username is not None else "guest",
        password=unquote(parts.password) if parts.password is not None else "guest",
    )
    for key, value in parse_qsl(parts.query, keep_blank_values=True):
        _apply_option(params, key, value)
    params.tls = tls
    if tls:
        params.ssl_context = params.build_ssl_context()
    elif params.auth_mechanism == "EXTERNAL":
        raise InvalidURLError("auth_mechanism=external needs TLS with a client certificate: use amqps://")
    return params


def limit_problem(name: str, value: object) -> str | None:
    """Why ``value`` is not an allowed ``frame_max`` / ``max_message_size``, or None when it is."""
    if isinstance(value, bool) or not isinstance(value, int):
        return f"{name} must be an int (bytes), got {type(value).__name__}"
    if name == "frame_max":
        if value != 0 and not _frames.FRAME_MIN_SIZE <= value <= _frames.FRAME_MAX_LIMIT:
            return (f"frame_max {value} is outside {_frames.FRAME_MIN_SIZE}..{_frames.FRAME_MAX_LIMIT} "
                    "bytes: give a frame size the broker may accept, or 0 to take the broker's value")
    elif not 1 <= value < (1 << 64):
        return (f"max_message_size {value} is outside 1..2**64-1 bytes (there is no 0 = unlimited): "
                f"give the largest body to accept (default {DEFAULT_MAX_MESSAGE_SIZE} = 128 MiB, "
                "RabbitMQ's own default; no RabbitMQ node accepts more than 536870912 = 512 MiB)")
    return None


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
            params.server_hostname = value or None
        elif key in _FILE_OPTIONS:
            if not value:
                raise ValueError
            setattr(params, key, value)
        elif key == "verify":
            if value not in _VERIFY:
                raise InvalidURLError(f"AMQP URL option verify={value!r}: use verify_peer or verify_none")
            params.verify = _VERIFY[value]
        elif key == "shuffle":
            if value.lower() not in _BOOL:
                raise ValueError
            params.shuffle = _BOOL[value.lower()]
        elif key == "fail_if_no_peer_cert":
            pass  # a server-side option in the RabbitMQ URI spec: accepted, means nothing to a client
        else:
            raise InvalidURLError(
                f"unknown AMQP URL option {key!r}; known: heartbeat, frame_max, channel_max, "
                "max_message_size, connection_timeout, timeout, auth_mechanism, name, "
                "server_name_indication, cacertfile, certfile, keyfile, verify, shuffle")
    except ValueError:
        raise InvalidURLError(f"AMQP URL option {key}={value!r} is not a valid value") from None
    if key in LIMIT_OPTIONS and (problem := limit_problem(key, getattr(params, key))) is not None:
        raise InvalidURLError(f"AMQP URL option {problem}")
