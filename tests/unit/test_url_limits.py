"""The connection limits (``frame_max``, ``max_message_size``) as URL options and ``connect()``
keywords: what is allowed, and a named error that says what to do for the rest."""
from __future__ import annotations

import socket

import pytest

from mmate_fast import errors
from mmate_fast.amqp import ConnectionParameters, connect, parse_url

URL = "amqp://guest:guest@127.0.0.1:5672/"


def _refused_url() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"amqp://guest:guest@127.0.0.1:{port}/"


def test_max_message_size_defaults_to_rabbitmqs_128_mib() -> None:
    assert parse_url(URL).max_message_size == 128 << 20
    assert ConnectionParameters().max_message_size == 128 << 20


@pytest.mark.parametrize("value", ["1", "1048576", "536870912", str((1 << 64) - 1)])
def test_max_message_size_url_option(value: str) -> None:
    assert parse_url(URL + "?max_message_size=" + value).max_message_size == int(value)


@pytest.mark.parametrize("value", ["0", "-1", "1MiB", "", str(1 << 64)])
def test_max_message_size_has_no_unlimited_and_says_so(value: str) -> None:
    with pytest.raises(errors.InvalidURLError, match="max_message_size") as info:
        parse_url(URL + "?max_message_size=" + value)
    if value == "0":
        assert "no 0 = unlimited" in str(info.value)


@pytest.mark.parametrize(("value", "expected"), [("0", 0), ("4096", 4096), ("4294967295", 4294967295)])
def test_frame_max_url_option(value: str, expected: int) -> None:
    assert parse_url(URL + "?frame_max=" + value).frame_max == expected


@pytest.mark.parametrize("value", ["100", "4095", "4294967296", "-1"])
def test_frame_max_outside_what_a_tune_can_carry_is_refused(value: str) -> None:
    with pytest.raises(errors.InvalidURLError, match="frame_max"):
        parse_url(URL + "?frame_max=" + value)


@pytest.mark.parametrize(("key", "value"), [("max_message_size", 0), ("max_message_size", -3),
                                            ("max_message_size", 1.5), ("max_message_size", True),
                                            ("frame_max", 100), ("frame_max", 1 << 32),
                                            ("frame_max", "8192")])
async def test_connect_keywords_are_checked_before_connecting(key: str, value: object) -> None:
    with pytest.raises(errors.InvalidArgumentError) as info:
        await connect(_refused_url(), timeout=2, **{key: value})
    assert info.value.argument == key and key in str(info.value)


async def test_good_connect_keywords_reach_the_connection() -> None:
    with pytest.raises(errors.BrokerUnreachableError):  # checked, accepted, then no broker there
        await connect(_refused_url(), timeout=2, max_message_size=1 << 20, frame_max=0)
