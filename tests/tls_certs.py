"""Throw-away TLS certificates for the tests, made with ``openssl`` in a folder of the caller's: a
CA, a server certificate for ``localhost``/``127.0.0.1``, client certificates whose CN is the user
name EXTERNAL logs in as (and one with no user behind it), and a second CA nobody trusts.

Used by the URL/TLS parsing unit tests and by the TLS node of the integration tests
(``tests/integration/tls_broker.py``); needs no broker.
"""
from __future__ import annotations

import subprocess
from dataclasses import dataclass
from pathlib import Path

#: the user EXTERNAL maps the client certificate's CN to
EXTERNAL_USER = "mmate-ext"
#: a CN with no user behind it (EXTERNAL must refuse it)
UNKNOWN_USER = "mmate-nobody"
#: the addresses in the server certificate's subjectAltName (nothing else matches it)
SERVER_DNS = "localhost"
SERVER_IP = "127.0.0.1"


class CertError(RuntimeError):
    """openssl could not make a certificate (the message has its error output)."""


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


def _openssl(*args: str, cwd: Path) -> None:
    try:
        proc = subprocess.run(["openssl", *args], cwd=cwd, capture_output=True, text=True, timeout=60)
    except OSError as exc:
        raise CertError(f"cannot run openssl: {exc}") from exc
    if proc.returncode != 0:
        raise CertError(f"openssl {' '.join(args[:2])} failed: {proc.stderr.strip()}")


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
        lines += ["extendedKeyUsage=serverAuth", f"subjectAltName=DNS:{SERVER_DNS},IP:{SERVER_IP}"]
    else:
        lines += ["extendedKeyUsage=clientAuth"]
    ext.write_text("\n".join(lines) + "\n")
    _openssl("req", "-newkey", "rsa:2048", "-nodes", "-subj", f"/CN={cn}/O=mmate-test",
             "-keyout", str(key), "-out", str(csr), cwd=d)
    _openssl("x509", "-req", "-in", str(csr), "-CA", str(ca[0]), "-CAkey", str(ca[1]),
             "-CAcreateserial", "-days", "2", "-out", str(cert), "-extfile", str(ext), cwd=d)
    return cert, key


def make_certs(d: Path) -> Certs:
    """CA, server cert (SERVER_DNS + SERVER_IP), client certs for EXTERNAL_USER and UNKNOWN_USER, and
    an unrelated CA (for the wrong-CA test), in folder ``d``."""
    d.mkdir(parents=True, exist_ok=True)
    ca = _make_ca(d, "mmate-test-ca")
    server = _make_leaf(d, "server", SERVER_DNS, ca, server=True)
    client = _make_leaf(d, "client", EXTERNAL_USER, ca, server=False)
    unknown = _make_leaf(d, "unknown", UNKNOWN_USER, ca, server=False)
    other_ca, _ = _make_ca(d, "other-ca")
    for p in d.iterdir():  # the node may run as another user (rabbitmq): let it read the files
        p.chmod(0o644)
    return Certs(ca[0], server[0], server[1], client[0], client[1], unknown[0], unknown[1], other_ca)
