"""aio-pika's connection arguments map onto mmate_fast's connection parameters: URL, keywords,
options added as URL query (as aio-pika's make_url does), TLS options."""
from __future__ import annotations

import ssl

import pytest

from mmate_fast.compat.aio_pika.connection import make_url, parameters


def test_keywords_build_the_url() -> None:
    url = make_url(None, host="broker", port=5673, login="u@x", password="p:w/", virtualhost="vh")
    params, query = parameters(url)
    assert (params.host, params.port, params.username, params.password, params.virtual_host) == (
        "broker", 5673, "u@x", "p:w/", "vh")
    assert not params.tls and query == {}
    default, _ = parameters(make_url())
    assert (default.host, default.port, default.virtual_host, default.username) == ("localhost", 5672, "/",
                                                                                   "guest")


def test_options_from_the_url_and_from_keywords() -> None:
    url = make_url("amqp://guest:guest@localhost//?name=svc", heartbeat=15, reconnect_interval=0.5,
                   fail_fast=False, interleave=1)
    params, query = parameters(url)
    assert params.heartbeat == 15 and params.connection_name == "svc" and params.virtual_host == "/"
    assert query["reconnect_interval"] == "0.5" and query["fail_fast"] == "0"  # robust-only, kept
    named, _ = parameters(make_url("amqp://h/"), client_properties={"connection_name": "from-props"})
    assert named.connection_name == "from-props"


def test_tls_options() -> None:
    url = make_url(None, host="h", ssl=True, port=5671, ssl_options={"cert_reqs": ssl.CERT_NONE})
    params, _ = parameters(url)
    assert params.tls and params.verify is False and params.port == 5671
    ctx = ssl.create_default_context()
    params, _ = parameters("amqps://h/", ssl_context=ctx)
    assert params.ssl_context is ctx


def test_not_an_amqp_url() -> None:
    with pytest.raises(ValueError, match="amqp://"):
        parameters("http://h/")
