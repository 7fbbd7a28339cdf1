"""``amqps://`` against a real TLS endpoint: a second RabbitMQ node started for this module.

The node (see tls_broker.py) has a TLS listener with certificates made for this run, PLAIN and
EXTERNAL (client certificate CN -> user) login, and ``verify_peer`` without requiring a client cert.
Also here: that no password ever shows up in a repr, str, error or log. The URL's TLS options (no
broker needed) are tested in tests/unit/test_tls_url.py.
"""
from __future__ import annotations

import asyncio
import logging
import ssl
import traceback
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from mmate_fast import errors
from mmate_fast.amqp import connect
from mmate_fast.amqp.url import parse_url
from mmate_fast.client import Client
from mmate_fast.contracts import Command
from tests.integration import broker_node, tls_broker
from tests.integration.tls_broker import TLSBroker

pytestmark = pytest.mark.integration

#: every connect attempt here must end (success or named error) well within this; never hang
GUARD = 30.0


@pytest.fixture(scope="module")
def broker() -> Iterator[TLSBroker]:
    """The TLS node for this module: started once, stopped and wiped at the end."""
    yield from broker_node.running(tls_broker.start)


def _url(b: TLSBroker, *, host: str = "localhost", userinfo: str = "", **options: str | Path) -> str:
    query = "&".join(f"{k}={v}" for k, v in options.items())
    return f"amqps://{userinfo}{host}:{b.tls_port}/" + (f"?{query}" if query else "")


def _external_url(b: TLSBroker, cert: Path | None = None, key: Path | None = None) -> str:
    return _url(b, cacertfile=b.certs.ca, certfile=cert or b.certs.client_cert,
                keyfile=key or b.certs.client_key, auth_mechanism="external")


async def _roundtrip(conn: object, queue: str) -> bytes:
    """Declare ``queue``, publish one message with a confirm, consume it, ack, delete the queue."""
    ch = await conn.channel(publisher_confirms=True)  # type: ignore[attr-defined]
    await ch.queue_declare(queue, auto_delete=False)
    body = uuid.uuid4().hex.encode()
    await ch.publish(body, "", queue)
    got: asyncio.Future[bytes] = asyncio.get_running_loop().create_future()

    def on_message(d: object) -> None:
        ch.basic_ack(d.delivery_tag)  # type: ignore[attr-defined]
        if not got.done():
            got.set_result(bytes(d.body))  # type: ignore[attr-defined]

    tag = await ch.basic_consume(queue, on_message)
    received = await asyncio.wait_for(got, 10)
    await ch.basic_cancel(tag)
    assert await ch.queue_delete(queue) == 0  # acked: nothing left behind
    await ch.close()
    assert received == body
    return received


def _tls_version(conn: object) -> str | None:
    transport = conn._transport  # type: ignore[attr-defined]
    ssl_object = transport.get_extra_info("ssl_object") if transport is not None else None
    return ssl_object.version() if ssl_object is not None else None


# ----------------------------------------------------------------------------- real TLS node
async def test_plain_login_over_tls_roundtrip(broker: TLSBroker) -> None:
    conn = await asyncio.wait_for(connect(broker.plain_url), GUARD)
    try:
        assert _tls_version(conn) in ("TLSv1.2", "TLSv1.3")
        await _roundtrip(conn, f"mmate-tls.plain.{uuid.uuid4().hex}")
    finally:
        await conn.close()


async def test_ip_address_host_is_verified_against_the_san(broker: TLSBroker) -> None:
    url = _url(broker, host="127.0.0.1", userinfo=f"{tls_broker.PLAIN_USER}:{broker.password}@",
               cacertfile=broker.certs.ca)
    conn = await asyncio.wait_for(connect(url), GUARD)
    await conn.close()


async def test_ip_address_not_in_the_san_is_a_named_tls_error(broker: TLSBroker) -> None:
    """The same node, port and certificate (trusted CA, IP SAN 127.0.0.1) reached at another loopback
    address: the certificate does not name the address connected to, so the handshake is refused."""
    url = _url(broker, host=tls_broker.OTHER_IP, userinfo=f"{tls_broker.PLAIN_USER}:{broker.password}@",
               cacertfile=broker.certs.ca)
    with pytest.raises(errors.TLSError) as info:
        await asyncio.wait_for(connect(url, timeout=10), GUARD)
    assert tls_broker.OTHER_IP in str(info.value)
    assert broker.password not in str(info.value)
    # the listener does serve that address: with the check off, the same URL logs in
    conn = await asyncio.wait_for(connect(url.replace(f"cacertfile={broker.certs.ca}", "verify=verify_none")),
                                  GUARD)
    await conn.close()


async def test_external_login_with_client_certificate(broker: TLSBroker) -> None:
    url = _external_url(broker)
    assert "@" not in url  # no user, no password anywhere
    conn = await asyncio.wait_for(connect(url), GUARD)
    try:
        assert conn.params.auth_mechanism == "EXTERNAL"
        # the certificate's CN user may only use EXTERNAL_PREFIX* queues: this works ...
        await _roundtrip(conn, f"{tls_broker.EXTERNAL_PREFIX}{uuid.uuid4().hex}")
        # ... and this is refused, so the broker did log us in as the certificate's user
        ch = await conn.channel()
        with pytest.raises(errors.AccessRefusedError):
            await ch.queue_declare(f"mmate-tls.not-mine.{uuid.uuid4().hex}")
    finally:
        await conn.close()


async def test_ready_ssl_context_is_used(broker: TLSBroker) -> None:
    ctx = ssl.create_default_context(cafile=str(broker.certs.ca))
    ctx.load_cert_chain(str(broker.certs.client_cert), str(broker.certs.client_key))
    conn = await asyncio.wait_for(
        connect(f"amqps://localhost:{broker.tls_port}/?auth_mechanism=external", ssl_context=ctx), GUARD)
    try:
        assert conn.params.ssl_context is ctx
        await _roundtrip(conn, f"{tls_broker.EXTERNAL_PREFIX}{uuid.uuid4().hex}")
    finally:
        await conn.close()


async def test_verify_none_connects_without_a_ca(broker: TLSBroker) -> None:
    url = _url(broker, userinfo=f"{tls_broker.PLAIN_USER}:{broker.password}@", verify="verify_none")
    conn = await asyncio.wait_for(connect(url), GUARD)
    await conn.close()


async def test_wrong_ca_is_a_named_tls_error(broker: TLSBroker) -> None:
    url = _url(broker, userinfo=f"{tls_broker.PLAIN_USER}:{broker.password}@",
               cacertfile=broker.certs.other_ca)
    with pytest.raises(errors.TLSError) as info:
        await asyncio.wait_for(connect(url, timeout=10), GUARD)
    assert "certificate" in str(info.value).lower()
    assert broker.password not in str(info.value)


async def test_host_name_mismatch_is_a_named_tls_error(broker: TLSBroker) -> None:
    url = _url(broker, userinfo=f"{tls_broker.PLAIN_USER}:{broker.password}@",
               cacertfile=broker.certs.ca, server_name_indication="not-this-host.example")
    with pytest.raises(errors.TLSError):
        await asyncio.wait_for(connect(url, timeout=10), GUARD)


async def test_plain_amqp_to_the_tls_port_fails_fast(broker: TLSBroker) -> None:
    url = f"amqp://{tls_broker.PLAIN_USER}:{broker.password}@localhost:{broker.tls_port}/"
    with pytest.raises(errors.AMQPConnectionError) as info:
        await asyncio.wait_for(connect(url, timeout=5), GUARD)
    assert broker.password not in str(info.value)


async def test_external_without_client_certificate_is_authentication_error(broker: TLSBroker) -> None:
    url = _url(broker, cacertfile=broker.certs.ca, auth_mechanism="external")
    with pytest.raises(errors.AuthenticationError) as info:
        await asyncio.wait_for(connect(url, timeout=10), GUARD)
    assert "EXTERNAL" in str(info.value)


async def test_missing_client_certificate_where_required_is_a_tls_error(broker: TLSBroker) -> None:
    """A TLS endpoint that requires a client certificate (the node's listener does not, so this is
    an asyncio TLS server with the same CA): no certificate -> TLSError naming the likely cause."""
    server_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_ctx.load_cert_chain(broker.certs.server_cert, broker.certs.server_key)
    server_ctx.load_verify_locations(broker.certs.ca)
    server_ctx.verify_mode = ssl.CERT_REQUIRED

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.close()

    server = await asyncio.start_server(serve, "127.0.0.1", 0, ssl=server_ctx)
    port = server.sockets[0].getsockname()[1]
    try:
        with pytest.raises(errors.TLSError, match="client certificate"):
            await asyncio.wait_for(
                connect(f"amqps://u:pw@localhost:{port}/?cacertfile={broker.certs.ca}", timeout=10), GUARD)
    finally:
        server.close()
        await server.wait_closed()


async def test_external_with_unknown_user_is_authentication_error(broker: TLSBroker) -> None:
    url = _external_url(broker, broker.certs.unknown_cert, broker.certs.unknown_key)
    with pytest.raises(errors.AuthenticationError) as info:
        await asyncio.wait_for(connect(url, timeout=10), GUARD)
    assert info.value.reply_code == 403


async def test_wrong_password_over_tls_is_authentication_error(broker: TLSBroker) -> None:
    url = _url(broker, userinfo=f"{tls_broker.PLAIN_USER}:wrong-{broker.password}@",
               cacertfile=broker.certs.ca)
    with pytest.raises(errors.AuthenticationError):
        await asyncio.wait_for(connect(url, timeout=10), GUARD)


@dataclass
class TlsPing(Command):
    n: int = 0


async def test_client_over_tls_with_external_login(broker: TLSBroker) -> None:
    """The whole Client (topology, confirms, consuming) over amqps:// with the client certificate."""
    service = f"{tls_broker.EXTERNAL_PREFIX}svc-{uuid.uuid4().hex[:8]}"
    got: asyncio.Future[int] = asyncio.get_running_loop().create_future()
    client = Client(_external_url(broker), service_name=service)
    try:
        async with client:
            client.add_handler(TlsPing, lambda m: got.done() or got.set_result(m.n))
            await client.start_consuming()
            await client.publish_command(TlsPing(n=7, target_service=service))
            assert await asyncio.wait_for(got, 10) == 7
    finally:
        conn = await connect(broker.plain_url)
        ch = await conn.channel()
        await ch.queue_delete(f"{service}-queue")
        await conn.close()


# ----------------------------------------------------------------------------- secrets
def _all_text(exc: BaseException) -> str:
    """Everything an error shows: str, repr, args, the formatted traceback and its whole chain."""
    parts = []
    seen: set[int] = set()
    e: BaseException | None = exc
    while e is not None and id(e) not in seen:
        seen.add(id(e))
        parts += [str(e), repr(e), repr(e.args)]
        e = e.__cause__ or e.__context__
    parts.append("".join(traceback.format_exception(exc)))
    return "\n".join(parts)


async def test_password_never_in_reprs_errors_or_logs(broker: TLSBroker, rabbitmq_url: str,
                                                      caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    secret = f"S3cret-{uuid.uuid4().hex}"
    texts: list[str] = []

    # parameters: repr, str, safe_url (of a URL with the secret in it, TLS and not)
    for url in (f"amqp://guest:{secret}@127.0.0.1:5672/",
                f"amqps://{tls_broker.PLAIN_USER}:{secret}@localhost:{broker.tls_port}/"
                f"?cacertfile={broker.certs.ca}"):
        params = parse_url(url)
        assert params.password == secret
        texts += [repr(params), str(params), params.safe_url(), f"{params}", f"{params!r}"]

    # every error a failed connect raises: wrong password (plain and TLS), unreachable, wrong CA
    failing = [
        (f"amqp://guest:{secret}@127.0.0.1:5672/", errors.AuthenticationError),
        (f"amqps://{tls_broker.PLAIN_USER}:{secret}@localhost:{broker.tls_port}/"
         f"?cacertfile={broker.certs.ca}", errors.AuthenticationError),
        (f"amqp://guest:{secret}@127.0.0.1:{tls_broker.free_port()}/", errors.BrokerUnreachableError),
        (f"amqps://{tls_broker.PLAIN_USER}:{secret}@localhost:{broker.tls_port}/"
         f"?cacertfile={broker.certs.other_ca}", errors.TLSError),
    ]
    for url, expected in failing:
        with pytest.raises(expected) as info:
            await asyncio.wait_for(connect(url, timeout=10), GUARD)
        texts.append(_all_text(info.value))

    # bad URLs: the error never echoes the password
    for bad in (f"amqp://guest:{secret}@127.0.0.1:notaport/", f"amqp://guest:{secret}@[::1/",
                f"amqp://guest:{secret}@h/?nope=1", f"amqp://guest:{secret}@h/a/b",
                f"amqps://guest:{secret}@h/?cacertfile=/no/such/file.pem",
                f"amqp://guest:{secret}@h/?auth_mechanism=external"):
        with pytest.raises(errors.InvalidURLError) as bad_info:
            parse_url(bad)
        texts.append(_all_text(bad_info.value))

    # a working connection: the Connection's repr and str
    conn = await connect(f"amqps://{tls_broker.PLAIN_USER}:{broker.password}@localhost:{broker.tls_port}/"
                         f"?cacertfile={broker.certs.ca}")
    try:
        texts += [repr(conn), str(conn), repr(conn.params), str(conn.params)]
        client = Client(f"amqps://{tls_broker.PLAIN_USER}:{secret}@localhost:{broker.tls_port}/")
        texts += [repr(client), str(client)]
    finally:
        await conn.close()
    assert broker.password not in "\n".join(texts)

    texts.append(caplog.text)
    leaked = [t for t in texts if secret in t]
    assert not leaked, f"the password leaked into: {leaked[0][:500]}"
    assert f"{tls_broker.PLAIN_USER}@localhost" in "\n".join(texts)  # the scan did see the params
