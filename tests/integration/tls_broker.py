"""Start a second, throw-away RabbitMQ node with a TLS listener, for the TLS/EXTERNAL tests.

Everything lives in one temp dir: certificates made with ``openssl`` (a CA, a server certificate for
``localhost``/``127.0.0.1``, client certificates whose CN is the user name EXTERNAL logs in as, and
a second CA the broker does not trust), the node's config, enabled-plugins file, definitions (users
and permissions), Erlang cookie, mnesia and logs. The node is started with ``rabbitmq-server
-detached`` under its own name, ports and ``HOME`` (so its cookie is its own: it can never talk to,
or be confused with, the main broker on 5672), and stopped with ``rabbitmqctl -n NODE stop``; if
that fails the node's own pid (from its pid file) is killed. The temp dir is then removed. A node
whose test run was killed before it could stop it is stopped by the next run (``reap_orphans``).
"""
from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import os
import secrets
import shutil
import signal
import socket
import ssl
import subprocess
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

RABBIT_BIN = Path(os.environ.get("MMATE_RABBITMQ_BIN", "/usr/lib/rabbitmq/bin"))
START_TIMEOUT = 60.0

#: the user EXTERNAL maps the client certificate's CN to
EXTERNAL_USER = "mmate-ext"
#: queue-name prefix the EXTERNAL user has permissions on (and nothing else)
EXTERNAL_PREFIX = "mmate-ext."
#: a CN with no user behind it (EXTERNAL must refuse it)
UNKNOWN_USER = "mmate-nobody"
#: the PLAIN user (its password is random per run; tests scan for it in reprs and errors)
PLAIN_USER = "mmate-tls"


class TLSBrokerError(RuntimeError):
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
    """A running second node: where it listens and how to log in."""

    node: str
    tmp: Path
    certs: Certs
    amqp_port: int
    tls_port: int
    dist_port: int
    password: str
    env: dict[str, str] = field(repr=False)
    startup_seconds: float = 0.0

    @property
    def plain_url(self) -> str:
        """amqps:// URL for PLAIN login with the CA (the password is in it: never log this)."""
        return (f"amqps://{PLAIN_USER}:{self.password}@localhost:{self.tls_port}/"
                f"?cacertfile={self.certs.ca}")

    def stop(self) -> None:
        """Stop the node (rabbitmqctl stop, else kill its pid) and remove the temp dir."""
        try:
            _stop_node(self.node, self.tmp, self.env)
        finally:
            shutil.rmtree(self.tmp, ignore_errors=True)


def free_port() -> int:
    """A TCP port on 127.0.0.1 that is free right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


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


def _config(tmp: Path, certs: Certs, amqp_port: int, tls_port: int) -> str:
    return "\n".join([
        f"listeners.tcp.default = 127.0.0.1:{amqp_port}",
        f"listeners.ssl.default = 127.0.0.1:{tls_port}",
        f"ssl_options.cacertfile = {certs.ca}",
        f"ssl_options.certfile = {certs.server_cert}",
        f"ssl_options.keyfile = {certs.server_key}",
        "ssl_options.verify = verify_peer",
        "ssl_options.fail_if_no_peer_cert = false",
        "auth_mechanisms.1 = PLAIN",
        "auth_mechanisms.2 = EXTERNAL",
        "ssl_cert_login_from = common_name",
        f"load_definitions = {tmp / 'definitions.json'}",
        "disk_free_limit.absolute = 1MB",
        "log.console = false",
        "log.file.level = info",
        "",
    ])


def _stop_node(node: str, tmp: Path, env: dict[str, str]) -> None:
    with contextlib.suppress(subprocess.TimeoutExpired, OSError):
        subprocess.run([str(RABBIT_BIN / "rabbitmqctl"), "-n", node, "stop"], env=env,
                       capture_output=True, timeout=60)
    pid_file = tmp / "node.pid"
    try:
        pid = int(pid_file.read_text().strip())
    except (OSError, ValueError):
        return
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        if not _alive(pid):
            return
        time.sleep(0.2)
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)


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


def _alive(pid: int) -> bool:
    """True while ``pid`` runs (a zombie waiting for its parent to reap it counts as gone)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    with contextlib.suppress(OSError, IndexError):
        if Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z":
            return False
    return True


def reap_orphans() -> None:
    """Stop nodes left behind by a test run that was killed (its owner pid is gone)."""
    for tmp in Path(tempfile.gettempdir()).glob("mmate-tls-*"):
        try:
            owner = int((tmp / "owner.pid").read_text())
            node = (tmp / "node.name").read_text().strip()
        except (OSError, ValueError):
            continue
        if _alive(owner):
            continue
        env = {**os.environ, "HOME": str(tmp), "RABBITMQ_CONF_ENV_FILE": str(tmp / "rabbitmq-env.conf"),
               "ERL_EPMD_ADDRESS": "127.0.0.1"}
        _stop_node(node, tmp, env)
        shutil.rmtree(tmp, ignore_errors=True)


def start(timeout: float = START_TIMEOUT) -> TLSBroker:
    """Make certificates and config, start the node, wait (bounded) until its TLS port speaks AMQP."""
    if not (RABBIT_BIN / "rabbitmq-server").exists():
        raise TLSBrokerError(f"{RABBIT_BIN}/rabbitmq-server not found (run ci/setup.sh, or set "
                             "MMATE_RABBITMQ_BIN)")
    if shutil.which("openssl") is None:
        raise TLSBrokerError("openssl is not installed")
    reap_orphans()
    tmp = Path(tempfile.mkdtemp(prefix="mmate-tls-"))
    tmp.chmod(0o755)
    node = f"mmate-tls-{uuid.uuid4().hex[:8]}@localhost"
    env: dict[str, str] = {}
    (tmp / "owner.pid").write_text(str(os.getpid()))
    (tmp / "node.name").write_text(node)
    try:
        certs = make_certs(tmp / "certs")
        amqp_port, tls_port, dist_port = free_port(), free_port(), free_port()
        password = secrets.token_urlsafe(18)
        (tmp / "definitions.json").write_text(json.dumps(_definitions(password)))
        (tmp / "rabbitmq.conf").write_text(_config(tmp, certs, amqp_port, tls_port))
        (tmp / "enabled_plugins").write_text("[rabbitmq_auth_mechanism_ssl].\n")
        (tmp / "rabbitmq-env.conf").write_text("")  # do not pick up the main node's env file
        cookie = tmp / ".erlang.cookie"
        cookie.write_text(secrets.token_hex(20).upper())
        cookie.chmod(0o400)
        env = {
            **os.environ,
            "HOME": str(tmp),
            "RABBITMQ_NODENAME": node,
            "RABBITMQ_NODE_IP_ADDRESS": "127.0.0.1",
            "RABBITMQ_NODE_PORT": str(amqp_port),
            "RABBITMQ_DIST_PORT": str(dist_port),
            "RABBITMQ_CONFIG_FILE": str(tmp / "rabbitmq.conf"),
            "RABBITMQ_CONF_ENV_FILE": str(tmp / "rabbitmq-env.conf"),
            "RABBITMQ_ENABLED_PLUGINS_FILE": str(tmp / "enabled_plugins"),
            "RABBITMQ_MNESIA_BASE": str(tmp / "mnesia"),
            "RABBITMQ_LOG_BASE": str(tmp / "log"),
            "RABBITMQ_PID_FILE": str(tmp / "node.pid"),
            "ERL_EPMD_ADDRESS": "127.0.0.1",
        }
        started = time.monotonic()
        proc = subprocess.run([str(RABBIT_BIN / "rabbitmq-server"), "-detached"], env=env, cwd=tmp,
                              capture_output=True, text=True, timeout=60)
        if proc.returncode != 0:
            raise TLSBrokerError(f"rabbitmq-server -detached failed ({proc.returncode}): "
                                 f"{proc.stderr.strip() or proc.stdout.strip()}")
        deadline = started + timeout
        while not _tls_answers(tls_port, certs.ca):
            if time.monotonic() > deadline:
                logs = "\n".join(p.read_text(errors="replace")[-3000:]
                                 for p in sorted((tmp / "log").glob("*.log")))
                raise TLSBrokerError(
                    f"TLS node {node} did not answer on 127.0.0.1:{tls_port} within {timeout:.0f} s; "
                    f"last log lines:\n{logs}")
            time.sleep(0.5)
        return TLSBroker(node, tmp, certs, amqp_port, tls_port, dist_port, password, env,
                         time.monotonic() - started)
    except BaseException:
        if env:
            _stop_node(node, tmp, env)
        shutil.rmtree(tmp, ignore_errors=True)
        raise
