"""The URL's TLS options and the TLS context they build (no broker: moved out of
tests/integration/test_tls.py, which connects to a real TLS node)."""
from __future__ import annotations

import ssl

import pytest

from mmate_fast import errors
from mmate_fast.amqp.tls import build_context
from mmate_fast.amqp.url import ConnectionParameters, parse_url
from tests.tls_certs import Certs, make_certs


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> Certs:
    """One set of throw-away certificates for the module (openssl takes a moment per key)."""
    return make_certs(tmp_path_factory.mktemp("certs"))


def test_url_tls_options_are_parsed(certs: Certs) -> None:
    p = parse_url(f"amqps://u:pw@broker.example:5999/vh?cacertfile={certs.ca}&certfile={certs.client_cert}"
                  f"&keyfile={certs.client_key}&verify=verify_peer&server_name_indication=sni.example"
                  "&auth_mechanism=external&fail_if_no_peer_cert=true")
    assert (p.tls, p.host, p.port, p.virtual_host) == (True, "broker.example", 5999, "vh")
    assert (p.cacertfile, p.certfile, p.keyfile) == (str(certs.ca), str(certs.client_cert),
                                                      str(certs.client_key))
    assert p.verify is True and p.server_hostname == "sni.example" and p.auth_mechanism == "EXTERNAL"
    ctx = p.ssl_context
    assert isinstance(ctx, ssl.SSLContext)
    assert ctx.verify_mode == ssl.CERT_REQUIRED and ctx.check_hostname
    assert ctx.minimum_version >= ssl.TLSVersion.TLSv1_2
    assert p.safe_url() == "amqps://u@broker.example:5999/vh"


def test_url_verify_none_turns_checks_off() -> None:
    p = parse_url("amqps://h/?verify=verify_none")
    assert p.port == 5671 and p.ssl_context is not None
    assert p.ssl_context.verify_mode == ssl.CERT_NONE and not p.ssl_context.check_hostname


def test_amqp_without_tls_has_no_context() -> None:
    p = parse_url("amqp://h/")
    assert not p.tls and p.ssl_context is None


@pytest.mark.parametrize("query", ["verify=maybe", "keyfile=/tmp/k.pem", "cacertfile=",
                                   "cacertfile=/no/such/ca.pem", "certfile=/no/such/cert.pem"])
def test_url_bad_tls_options_are_named_errors(query: str) -> None:
    with pytest.raises(errors.InvalidURLError):
        parse_url(f"amqps://h/?{query}")


def test_external_over_plain_amqp_is_rejected() -> None:
    with pytest.raises(errors.InvalidURLError, match="amqps"):
        parse_url("amqp://h/?auth_mechanism=external")


def test_build_context_loads_a_client_chain(certs: Certs) -> None:
    ctx = build_context(cacertfile=str(certs.ca), certfile=str(certs.client_cert),
                        keyfile=str(certs.client_key))
    assert ctx.verify_mode == ssl.CERT_REQUIRED
    with pytest.raises(errors.InvalidURLError, match="certfile"):  # key of another certificate
        build_context(cacertfile=str(certs.ca), certfile=str(certs.client_cert),
                      keyfile=str(certs.unknown_key))


def test_parameters_made_directly_with_tls_get_a_context() -> None:
    p = ConnectionParameters(host="h", port=5671, tls=True, password="pw-123")
    assert p.ssl_context is not None
    assert "pw-123" not in repr(p) and "pw-123" not in str(p)

