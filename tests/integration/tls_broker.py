"""Start a second, throw-away RabbitMQ node with a TLS listener, for the TLS/EXTERNAL tests.

The node is a :mod:`broker_node` node (own name, ports, ``HOME``/cookie, data and logs in one temp
dir; stopped and wiped by ``stop()``, orphans of killed runs reaped by the next start) with, in its
temp dir, certificates made with ``openssl`` (a CA, a server certificate for
``localhost``/``127.0.0.1``, client certificates whose CN is the user name EXTERNAL logs in as, and
a second CA the broker does not trust), definitions (users and permissions) and a TLS listener with
PLAIN and EXTERNAL login.
"""
from __future__ import annotations

import base64
import hashlib
import json
import secrets
import shutil
import socket
import ssl
import subprocess
from dataclasses import dataclass
from pathlib import Path

from tests.integration import broker_node
from tests.integration.broker_node import START_TIMEOUT, BrokerNode, BrokerNodeError, free_port

#: the user EXTERNAL maps the client certificate's CN to
EXTERNAL_USER = "mmate-ext"
#: queue-name prefix the EXTERNAL user has permissions on (and nothing else)
EXTERNAL_PREFIX = "mmate-ext."
#: a CN with no user behind it (EXTERNAL must refuse it)
UNKNOWN_USER = "mmate-nobody"
#: the PLAIN user (its password is random per run; tests scan for it in reprs and errors)
PLAIN_USER = "mmate-tls"

__all__ = ["EXTERNAL_PREFIX", "EXTERNAL_USER", "PLAIN_USER", "UNKNOWN_USER", "Certs", "TLSBroker",
           "TLSBrokerError", "free_port", "make_certs", "start"]


class TLSBrokerError(BrokerNodeError):
    """The TLS test node could not be prepared or started (the message says why and where the logs are)."""


@dataclass
class Certs:
    """Paths of the PEM files made for one run."""

    ca: Path
    server_cert: Path
    server_key: Path
    client_cert: Path
    client_key: Path
    unknown_cert: Path
    unknown_key: Path
    other_ca: Path


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


def _openssl(*args: str, cwd: Path) -> None:
    proc = subprocess.run(["openssl", *args], cwd=cwd, capture_output=True, text=True, timeout=60)
    if proc.returncode != 0:
        raise TLSBrokerError(f"openssl {' '.join(args[:2])} failed: {proc.stderr.strip()}")


def _make_ca(d: Path, name: str) -> tuple[Path, Path]:
    key, cert = d / f"{name}.key", d / f"{name}.pem"
    _openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", f"/CN={name}",
             "-keyout", str(key), "-out", str(cert),
             "-addext", "basicConstraints=critical,CA:TRUE",
             "-addext", "keyUsage=critical,keyCertSign,cRLSign", cwd=d)
    return cert, key


def _make_leaf(d: Path, name: str, cn: str, ca: tuple[Path, Path], *, server: bool) -> tuple[Path, Path]:
    key, csr, cert, ext = d / f"{name}.key", d / f"{name}.csr", d / f"{name}.pem", d / f"{name}.ext"
    lines = ["basicConstraints=CA:FALSE", "keyUsage=critical,digitalSignature,keyEncipherment",
             "subjectKeyIdentifier=hash", "authorityKeyIdentifier=keyid,issuer"]
    if server:
        lines += ["extendedKeyUsage=serverAuth", "subjectAltName=DNS:localhost,IP:127.0.0.1"]
    else:
        lines += ["extendedKeyUsage=clientAuth"]
    ext.write_text("\n".join(lines) + "\n")
    _openssl("req", "-newkey", "rsa:2048", "-nodes", "-subj", f"/CN={cn}/O=mmate-test",
             "-keyout", str(key), "-out", str(csr), cwd=d)
    _openssl("x509", "-req", "-in", str(csr), "-CA", str(ca[0]), "-CAkey", str(ca[1]),
             "-CAcreateserial", "-days", "2", "-out", str(cert), "-extfile", str(ext), cwd=d)
    return cert, key


def make_certs(d: Path) -> Certs:
    """CA, server cert (localhost + 127.0.0.1), client certs for EXTERNAL_USER and UNKNOWN_USER, and
    an unrelated CA (for the wrong-CA test)."""
    d.mkdir(parents=True, exist_ok=True)
    ca = _make_ca(d, "mmate-test-ca")
    server = _make_leaf(d, "server", "localhost", ca, server=True)
    client = _make_leaf(d, "client", EXTERNAL_USER, ca, server=False)
    unknown = _make_leaf(d, "unknown", UNKNOWN_USER, ca, server=False)
    other_ca, _ = _make_ca(d, "other-ca")
    for p in d.iterdir():  # the node may run as another user (rabbitmq): let it read the files
        p.chmod(0o644)
    return Certs(ca[0], server[0], server[1], client[0], client[1], unknown[0], unknown[1], other_ca)


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
        certs = make_certs(node.tmp / "certs")
        made.append(certs)
        definitions = node.tmp / "definitions.json"
        definitions.write_text(json.dumps(_definitions(password)))
        return [
            f"listeners.ssl.default = 127.0.0.1:{node.ports['tls']}",
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
