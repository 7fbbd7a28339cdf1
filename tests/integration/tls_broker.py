"""Start a second, throw-away RabbitMQ node with a TLS listener, for the TLS/EXTERNAL tests.

The node is a :mod:`broker_node` node (own name, ports, ``HOME``/cookie, data and logs in one temp
dir; stopped and wiped by ``stop()``, orphans of killed runs reaped by the next start) with, in its
temp dir, certificates made by :mod:`tests.tls_certs` (a CA, a server certificate for
``localhost``/``127.0.0.1``, client certificates whose CN is the user name EXTERNAL logs in as, and
a second CA the broker does not trust), definitions (users and permissions) and a TLS listener with
PLAIN and EXTERNAL login, on 127.0.0.1 and on OTHER_IP (same port and certificate, an address the
certificate does not name: the negative IP-SAN case).
"""
from __future__ import annotations

import base64
import hashlib
import json
import secrets
import shutil
import socket
import ssl
from dataclasses import dataclass
from pathlib import Path

from tests.integration import broker_node
from tests.integration.broker_node import START_TIMEOUT, BrokerNode, BrokerNodeError, free_port
from tests.tls_certs import EXTERNAL_USER, UNKNOWN_USER, CertError, Certs, make_certs

#: queue-name prefix the EXTERNAL user has permissions on (and nothing else)
EXTERNAL_PREFIX = "mmate-ext."
#: a second loopback address the TLS listener also serves, not in the server certificate
OTHER_IP = "127.0.0.2"
#: the PLAIN user (its password is random per run; tests scan for it in reprs and errors)
PLAIN_USER = "mmate-tls"

__all__ = ["EXTERNAL_PREFIX", "EXTERNAL_USER", "OTHER_IP", "PLAIN_USER", "UNKNOWN_USER", "Certs",
           "TLSBroker", "TLSBrokerError", "free_port", "make_certs", "start"]


class TLSBrokerError(BrokerNodeError):
    """The TLS test node could not be prepared or started (the message says why and where the logs are)."""


@dataclass
class TLSBroker:
    """A running TLS node: where it listens and how to log in."""

    node: BrokerNode
    certs: Certs
    password: str

    @property
    def tls_port(self) -> int:
        return self.node.ports["tls"]

    @property
    def amqp_port(self) -> int:
        return self.node.amqp_port

    @property
    def plain_url(self) -> str:
        """amqps:// URL for PLAIN login with the CA (the password is in it: never log this)."""
        return (f"amqps://{PLAIN_USER}:{self.password}@localhost:{self.tls_port}/"
                f"?cacertfile={self.certs.ca}")

    def stop(self) -> None:
        """Stop the node and remove its temp dir."""
        self.node.stop()


def _password_hash(password: str) -> str:
    """RabbitMQ's rabbit_password_hashing_sha256: base64(salt + sha256(salt + password))."""
    salt = secrets.token_bytes(4)
    return base64.b64encode(salt + hashlib.sha256(salt + password.encode()).digest()).decode()


def _definitions(password: str) -> dict[str, object]:
    users = [
        {"name": PLAIN_USER, "password_hash": _password_hash(password),
         "hashing_algorithm": "rabbit_password_hashing_sha256", "tags": ""},
        # EXTERNAL never checks a password; give it an unguessable one anyway
        {"name": EXTERNAL_USER, "password_hash": _password_hash(secrets.token_hex(16)),
         "hashing_algorithm": "rabbit_password_hashing_sha256", "tags": ""},
    ]
    # the EXTERNAL user may only touch EXTERNAL_PREFIX* queues and the Mmate exchanges (mmate.*):
    # a test proves who it is logged in as
    ext = f"^({EXTERNAL_PREFIX.replace('.', '[.]')}.*|mmate[.].*|amq[.]default)$"
    perms = [{"user": PLAIN_USER, "vhost": "/", "configure": ".*", "write": ".*", "read": ".*"},
             {"user": EXTERNAL_USER, "vhost": "/", "configure": ext, "write": ext, "read": ext}]
    return {"users": users, "vhosts": [{"name": "/"}], "permissions": perms}


def _tls_answers(port: int, ca: Path) -> bool:
    """True when a TLS handshake with the server certificate succeeds on 127.0.0.1:port."""
    ctx = ssl.create_default_context(cafile=str(ca))
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=2) as raw, \
                ctx.wrap_socket(raw, server_hostname="localhost") as tls:
            tls.sendall(b"AMQP\x00\x00\x09\x01")
            tls.settimeout(2)
            return tls.recv(1) == b"\x01"
    except OSError:
        return False


def start(timeout: float = START_TIMEOUT) -> TLSBroker:
    """Make certificates, definitions and config, start the node, wait (bounded) until its TLS
    port speaks AMQP."""
    if shutil.which("openssl") is None:
        raise TLSBrokerError("openssl is not installed")
    password = secrets.token_urlsafe(18)
    made: list[Certs] = []

    def configure(node: BrokerNode) -> list[str]:
        try:
            certs = make_certs(node.tmp / "certs")
        except CertError as exc:
            raise TLSBrokerError(str(exc)) from exc
        made.append(certs)
        definitions = node.tmp / "definitions.json"
        definitions.write_text(json.dumps(_definitions(password)))
        return [
            f"listeners.ssl.default = 127.0.0.1:{node.ports['tls']}",
            f"listeners.ssl.other_ip = {OTHER_IP}:{node.ports['tls']}",
            f"ssl_options.cacertfile = {certs.ca}",
            f"ssl_options.certfile = {certs.server_cert}",
            f"ssl_options.keyfile = {certs.server_key}",
            "ssl_options.verify = verify_peer",
            "ssl_options.fail_if_no_peer_cert = false",
            "auth_mechanisms.1 = PLAIN",
            "auth_mechanisms.2 = EXTERNAL",
            "ssl_cert_login_from = common_name",
            f"load_definitions = {definitions}",
        ]

    node = broker_node.start(kind="tls", extra_ports=("tls",), configure=configure,
                             plugins=("rabbitmq_auth_mechanism_ssl",),
                             ready=lambda n: _tls_answers(n.ports["tls"], made[0].ca), timeout=timeout)
    return TLSBroker(node, made[0], password)
